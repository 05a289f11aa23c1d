/*
 * rng.h - virtio-rng fed by the host's getrandom.  See rng.c.
 */
#ifndef VMLUA_RNG_H
#define VMLUA_RNG_H

#include "device.h"
#include "virtio.h"

#define RNG_FEATURES ((1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
                      (1ULL << VIRTIO_RING_F_EVENT_IDX))

extern const struct vdev_backend rng_backend;

#endif
