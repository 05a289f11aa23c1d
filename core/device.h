/*
 * device.h - one virtio device, whatever carries it.  See device.c.
 */
#ifndef VMLUA_DEVICE_H
#define VMLUA_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include "memory.h"
#include "virtq.h"

#define VDEV_MAX_QUEUES 8
#define VDEV_CONFIG_MAX 256

/* What a device reports to whoever watches it (the Lua binding). */
enum vdev_event {
	VDEV_EV_NOTIFY,     /* arg: queue index */
	VDEV_EV_STATUS,     /* arg: old status */
	VDEV_EV_RESET,
	VDEV_EV_CONFIG,     /* arg: offset the driver wrote */
	VDEV_EV_ERROR,      /* reason in dev->reason */
	VDEV_EV__COUNT
};
const char *vdev_event_name(enum vdev_event e);

/* Rules of the device protocol (as virtq.h's are of the ring). */
enum vdev_reason {
	VDEV_OK = 0,
	VDEV_STATUS_BIT_CLEARED = 100,   /* start above the virtq reasons */
	VDEV_FEATURES_AFTER_FEATURES_OK,
	VDEV_DRIVER_OK_BEFORE_FEATURES_OK,
	VDEV_QUEUE_CHANGED_WHILE_READY,
	VDEV_QUEUE_SIZE_OVER_MAX,
	VDEV_NOTIFY_BAD_QUEUE,
	VDEV_CONFIG_OUT_OF_RANGE,
	VDEV_HOOK_ERROR,
	VDEV_REASON__END
};
/* The name of a device or virtqueue reason. */
const char *vdev_reason_name(int reason);

struct vdev;

/* A device backend written in C. */
struct vdev_backend {
	const char *name;
	void (*notify)(struct vdev *d, unsigned q);
	void (*reset)(struct vdev *d);
	/* Optional: a counter or property by name (1 if known), for the Lua
	 * binding's fields; and the release of backend_data when the device
	 * is closed. */
	int (*field)(struct vdev *d, const char *name, int64_t *value);
	void (*destroy)(struct vdev *d);
	/* Optional: a host fd the transport's loop polls for the device (a
	 * tap, a thread's wakeup), and what to do when it is readable. */
	int (*pollfd)(struct vdev *d);
	void (*ready)(struct vdev *d);
};

struct vdev_queue {
	uint16_t num_max, num;
	uint64_t desc, driver, device;
	int ready;
	struct virtq vq;
};

struct vdev {
	uint32_t id;
	uint64_t offered, accepted;
	uint8_t status;
	uint32_t generation;
	uint8_t config[VDEV_CONFIG_MAX];
	uint32_t config_len;
	unsigned nqueues;
	struct vdev_queue q[VDEV_MAX_QUEUES];
	struct memory *mem;            /* the driver's memory, once attached */
	uint32_t isr;                  /* VIRTIO_ISR_* bits pending */
	int reason;                    /* why it needs a reset, 0 if fine */
	uint64_t notifies;

	const struct vdev_backend *backend;
	void *backend_data;
	/* Watchers: events (the Lua binding) and the interrupt (transport). */
	void (*on_event)(struct vdev *d, enum vdev_event e, unsigned arg);
	/* q: the queue with new used entries, or -1 for a config change. */
	void (*on_interrupt)(struct vdev *d, int q);
	void *watcher;
	void *transport;
};

/* A device with `nqueues` queues of at most num_max[i] entries. */
void vdev_init(struct vdev *d, uint32_t id, unsigned nqueues,
               const uint16_t *num_max, uint64_t features,
               const void *config, uint32_t config_len);
/* The memory the driver's rings live in (resets the device). */
void vdev_attach(struct vdev *d, struct memory *m);

/* Driver side: what a transport turns register writes into. */
void vdev_set_status(struct vdev *d, uint8_t status);
void vdev_set_driver_features(struct vdev *d, uint64_t features);
void vdev_set_queue(struct vdev *d, unsigned q, unsigned num, uint64_t desc,
                    uint64_t driver, uint64_t device);
void vdev_set_queue_ready(struct vdev *d, unsigned q, int ready);
void vdev_notify(struct vdev *d, unsigned q);
/* Config space access: 0, or -1 (and the device breaks) out of range. */
int vdev_config_read(struct vdev *d, uint32_t off, void *buf, uint32_t len);
int vdev_config_write(struct vdev *d, uint32_t off, const void *buf, uint32_t len);
/* Read and clear the interrupt status. */
uint32_t vdev_ack_interrupt(struct vdev *d, uint32_t bits);

/* Device side. */
void vdev_reset(struct vdev *d);
void vdev_update_config(struct vdev *d, uint32_t off, const void *buf, uint32_t len);
/* After pushing to queue q: raise the interrupt if the driver wants it. */
void vdev_interrupt(struct vdev *d, unsigned q);
/* A backend's int64_t counters by name, for its `field` function. */
struct vdev_counter {
	const char *name;
	size_t off;            /* offsetof the counter in the backend's struct */
};
/* Look name up among n counters of the struct at base; 1 and *v if found. */
int vdev_counter(const void *base, const struct vdev_counter *t, size_t n,
                 const char *name, int64_t *v);

/* The backend's fd for the transport's loop, or -1; and its handler. */
int vdev_pollfd(struct vdev *d);
void vdev_ready(struct vdev *d);
/* The guest broke a rule: NEEDS_RESET, the error event, a config interrupt. */
void vdev_fail(struct vdev *d, int reason);

#endif
