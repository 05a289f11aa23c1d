/*
 * net.h - virtio-net: frames between a guest and a switch port, through
 * an optional frame hook.  See net.c.
 */
#ifndef VMLUA_NET_H
#define VMLUA_NET_H

#include <stddef.h>
#include <stdint.h>
#include "device.h"
#include "switch.h"

#define NET_HDR_LEN    12          /* struct virtio_net_hdr_v1 */
#define NET_FRAME_MAX  65536       /* no larger frame is taken from a guest */
#define NET_BACKLOG    64          /* frames kept while the guest has no rx buffer */
#define NET_CONFIG_LEN 8           /* mac[6], status */
#define NET_RX 0
#define NET_TX 1

enum net_dir { NET_DIR_TX, NET_DIR_RX };

struct net;
/* A frame hook: may change the frame in place (up to cap bytes, new length
 * in *len); returns 0 to pass it on, -1 to drop it. */
typedef int (*net_hook_fn)(struct net *n, enum net_dir dir, uint8_t *frame,
                           size_t *len, size_t cap);

struct net {
	struct vdev *dev;
	uint8_t mac[6];
	struct sw_port port;        /* port.sw is NULL when not on a switch */
	int tap_fd;                 /* a host tap device, or -1 */
	struct slink *user;         /* user-mode networking, or NULL */
	char tap_name[16];
	net_hook_fn hook;
	uint8_t *scratch;           /* NET_FRAME_MAX bytes: a frame from the guest or the tap */
	uint8_t *rx_buf;            /* NET_FRAME_MAX bytes: a frame the rx hook works on */
	struct { size_t len; uint8_t *data; } backlog[NET_BACKLOG];
	unsigned bl_head, bl_count;
	int64_t tx_frames, tx_bytes, rx_frames, rx_bytes;
	int64_t rx_dropped, tx_dropped, hook_dropped, errors;
};

struct net *net_new(const uint8_t mac[6]);
void net_free(struct net *n);
uint64_t net_features(void);
void net_config(const struct net *n, uint8_t config[NET_CONFIG_LEN]);
/* Join the host's tap device `name` (created if missing; needs root or
 * CAP_NET_ADMIN); 0, or -1 with err set. */
int net_open_tap(struct net *n, const char *name, char *err, size_t errlen);
/* User-mode networking (libslirp) with these host port forwards; with
 * sandbox, libslirp's thread runs under the I/O seccomp filter. */
int net_open_user(struct net *n, const char *const *forwards, unsigned nforwards,
                  int sandbox, char *err, size_t errlen);
/* Give the guest a frame (from the switch, or a script). */
void net_deliver(struct net *n, const uint8_t *frame, size_t len);

/* backend_data is the struct net, which destroy frees. */
extern const struct vdev_backend net_backend;

#endif
