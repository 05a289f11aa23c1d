/*
 * vmlua.h - what the Lua bindings in core/ know of one another: the
 * metatable names, the registration functions that linit.c calls, and
 * the functions one binding offers another.  The helpers they all use
 * are in lhelpers.h.  Logic files (memory.c, loader.c, ...) do not
 * include this header: they know nothing of Lua.
 */
#ifndef VMLUA_H
#define VMLUA_H

#include <stdint.h>
#include "lhelpers.h"

#define VMLUA_VERSION "vmlua 0.1.0"

/* Metatable names: luaL_checkudata errors then read "vmlua.Memory expected". */
#define VMLUA_MEMORY  "vmlua.Memory"
#define VMLUA_KERNEL  "vmlua.Kernel"
#define VMLUA_VM      "vmlua.VM"
#define VMLUA_VIRTQUEUE "vmlua.Virtqueue"
#define VMLUA_CHAIN   "vmlua.Chain"
#define VMLUA_DEVICE  "vmlua.Device"
#define VMLUA_VHOST   "vmlua.VhostUser"

/* Each binding file adds its constructors and functions to the table on
 * top of the stack and creates its metatables. */
void vmlua_memory_register(lua_State *L);
void vmlua_loader_register(lua_State *L);
void vmlua_acpi_register(lua_State *L);
void vmlua_vm_register(lua_State *L);
void vmlua_tty_register(lua_State *L);
void vmlua_virtq_register(lua_State *L);
void vmlua_device_register(lua_State *L);
void vmlua_uml_register(lua_State *L);
void vmlua_vhost_register(lua_State *L);
void vmlua_rng_register(lua_State *L);
void vmlua_blk_register(lua_State *L);
void vmlua_net_register(lua_State *L);
void vmlua_console_register(lua_State *L);
void vmlua_sandbox_register(lua_State *L);

/* The Device at idx (ldevice.c). */
struct vdev;
struct vdev *vmlua_checkdevice(lua_State *L, int idx);
/* Push a new Device (vmlua.Device); a C device sets its backend on it. */
struct vdev *vmlua_newdevice(lua_State *L, uint32_t id, unsigned nqueues,
                             const uint16_t *num_max, uint64_t features,
                             const void *config, uint32_t config_len);
/* A virtqueue size at idx: a power of 2 from min to 32768, else an
 * argument error on arg: "<what> must be a power of 2 from <min> to 32768". */
uint16_t vmlua_queuesize(lua_State *L, int idx, int arg, const char *what, unsigned min);
/* A C backend's Lua function, kept by the Device at dev under key (a name
 * no event has), where a cycle through it can be collected (ldevice.c). */
void vmlua_device_setfn(lua_State *L, int dev, const char *key, int fn);
/* Push d's function `key` on its main thread, with room for `extra` more
 * values, and return that thread; NULL, nothing pushed, when it has none. */
lua_State *vmlua_device_pushfn(struct vdev *d, const char *key, int extra);
/* Attach the Device at dev to the Memory at mem, which it keeps alive. */
void vmlua_device_attach(lua_State *L, int dev, int mem);
/* The vhost-user server at idx (lvhost.c). */
struct vu_server;
struct vu_server *vmlua_checkvhost(lua_State *L, int idx);

/* The Virtqueue at idx (lvirtq.c), and the queue inside it. */
struct lvirtq;
struct virtq;
struct lvirtq *vmlua_checkvirtq(lua_State *L, int idx);
struct virtq *vmlua_virtq(struct lvirtq *v);
/* Push a Virtqueue for a queue that the object at `owner` holds.  The
 * owner is a Memory, or an object (a Device) that keeps its Memory, once
 * it has one, at field "memory" of a table in its second user value. */
void vmlua_push_virtq(lua_State *L, struct virtq *q, int owner);

int luaopen_vmlua_core(lua_State *L);

/* The Memory at idx; raises "attempt to use a closed vmlua.Memory". */
struct memory;
struct memory *vmlua_checkmemory(lua_State *L, int idx);
/* Push a new, empty Memory (no regions) that C fills in; returns it. */
struct memory *vmlua_newmemory(lua_State *L);
/* Mark the memory in use (delta +1) or no longer in use (-1) by a VM. */
void vmlua_memory_busy(struct memory *m, int delta);
/* Has the Memory this struct lives in been closed? */
int vmlua_memory_closed(struct memory *m);

/* The loaded kernel's facts (loader.h) behind the vmlua.Kernel at idx. */
struct kernel_info;
const struct kernel_info *vmlua_checkkernel(lua_State *L, int idx);

#endif
