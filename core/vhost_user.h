/*
 * vhost_user.h - serving one virtio device to a vhost-user frontend
 * (user-mode Linux's virtio_uml) over a unix socket.  See vhost_user.c.
 * No Lua here: lvhost.c binds it.
 */
#ifndef VMLUA_VHOST_USER_H
#define VMLUA_VHOST_USER_H

#include <poll.h>
#include <stdint.h>
#include "device.h"
#include "memory.h"

#define VU_MAX_REGIONS 8          /* the protocol's baseline table */
/* The connection, its deadline timer, the re-arm eventfd, the device's
 * own fd, and one kick fd per ring. */
#define VU_MAX_POLLFDS (4 + VDEV_MAX_QUEUES)
#define VU_HEADER_SIZE    12
#define VU_PAYLOAD_MAX    512
#define VU_MAX_FDS        VU_MAX_REGIONS

/* Front-end requests (the vhost-user specification's numbering). */
enum vu_request {
	VU_GET_FEATURES = 1, VU_SET_FEATURES = 2, VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4, VU_SET_MEM_TABLE = 5, VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7, VU_SET_VRING_NUM = 8, VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10, VU_GET_VRING_BASE = 11, VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13, VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15, VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17, VU_SET_VRING_ENABLE = 18,
	VU_SET_BACKEND_REQ_FD = 21, VU_GET_CONFIG = 24, VU_SET_CONFIG = 25,
	VU_VRING_KICK = 35,
	VU_REQUEST__END = 41
};

/* Protocol feature bits we speak; none is required of the frontend. */
#define VU_PROTOCOL_F_REPLY_ACK             3
#define VU_PROTOCOL_F_BACKEND_REQ           5
#define VU_PROTOCOL_F_CONFIG                9
#define VU_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VU_F_PROTOCOL_FEATURES             30

struct vu_ring {
	int kick_fd, call_fd;          /* -1 when none */
	uint32_t num;
	uint16_t base;
	uint64_t desc, avail, used;    /* guest-physical, once translated */
	int have_addr, enabled, started;
};

struct vu_server {
	char path[108];
	int listen_fd, conn_fd, backend_fd;   /* -1 when none */
	int timer_fd;          /* fires when a message is late (timerfd) */
	int rearm_fd;          /* readable while rings wait for a turn (eventfd) */
	unsigned pending;      /* rings whose kick was cut short by the budget */
	struct {               /* the message being received, so far */
		uint8_t buf[VU_HEADER_SIZE + VU_PAYLOAD_MAX];
		size_t got;
		int fds[VU_MAX_FDS];
		unsigned nfds;
	} in;
	struct vdev *dev;
	struct memory *mem;            /* filled by SET_MEM_TABLE */
	uint64_t features;             /* what the frontend set */
	uint64_t protocol;             /* protocol features agreed */
	int owned;
	struct {                       /* frontend address -> guest-physical */
		uint64_t user, gpa, size;
	} map[VU_MAX_REGIONS];
	unsigned nmap;
	struct vu_ring ring[VDEV_MAX_QUEUES];
	uint64_t messages, connections, drops;
	char last_error[160];
	/* Told of each dropped connection, with its reason. */
	void (*on_drop)(struct vu_server *s, const char *why);
	void *opaque;
	/* Told of each in-band interrupt sent to the frontend (the
	 * calendar of a virtual-time guest counts them: calendar.h). */
	void (*on_call)(void *o);
	void *on_call_o;
};

/*
 * Listen on `path` (removed first if it is a stale socket) and serve
 * `dev` from it; the frontend's memory goes into `mem`, which must be
 * empty and stays the caller's.  0, or -1 with the reason in err.
 */
int vu_listen(struct vu_server *s, const char *path, struct vdev *dev,
              struct memory *mem, char *err, size_t errlen);
/* The fds to poll now, each with POLLIN; returns how many (at most
 * VU_MAX_POLLFDS). */
int vu_pollfds(const struct vu_server *s, struct pollfd *pfd);
/* Serve whatever the polled fds say is ready (revents from vu_pollfds). */
void vu_serve(struct vu_server *s, const struct pollfd *pfd, int n);
/* Drop the connection (if any): the device is reset, memory unmapped. */
void vu_disconnect(struct vu_server *s, const char *why);
/* Stop listening, drop the connection, remove the socket; idempotent. */
void vu_close(struct vu_server *s);
const char *vu_request_name(uint32_t req);

#endif
