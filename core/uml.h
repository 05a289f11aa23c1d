/*
 * uml.h - the uml backend: a user-mode Linux guest as a child process.
 * See uml.c.
 */
#ifndef VMLUA_UML_H
#define VMLUA_UML_H

#include <stddef.h>
#include <sys/types.h>

struct uml_vm;
struct jail;

/* Find linux.uml: `path` if given, else $PATH.  1 and the full path in
 * out, or 0 with the reason in why. */
int uml_find(const char *path, char *out, size_t outlen, char *why, size_t whylen);

/* A private directory (0700, under $TMPDIR or /tmp) for one machine's
 * vhost-user sockets and UML's own files (its uml_dir=).  0 and the path
 * in out, or -1 with the reason in err. */
int uml_rundir_make(char *out, size_t outlen, char *err, size_t errlen);

/* Start `binary` with argv[1..] = args (NULL-terminated); its console
 * (con0) and its stdout/stderr come back to us through pipes.  With a
 * rundir (from uml_rundir_make, or NULL), UML keeps its files there, and
 * the directory is removed with everything in it once linux.uml has
 * ended, by us or, if we were killed, by the guardian.  With a jail
 * (jail.h; or NULL), linux.uml runs in it. */
struct uml_vm *uml_vm_spawn(const char *binary, const char *const *args,
                            const char *rundir, const struct jail *jail,
                            char *err, size_t errlen);
pid_t uml_vm_pid(const struct uml_vm *vm);
/* The fd to poll for output (and for the child's end: EOF). */
int uml_vm_output_fd(const struct uml_vm *vm);
/* Non-blocking: take what output there is; returns bytes, 0 at EOF or
 * when there is none (see uml_vm_eof). */
size_t uml_vm_read(struct uml_vm *vm, char *buf, size_t max);
int uml_vm_eof(const struct uml_vm *vm);
/* An fd that polls readable when the child ends, or -1 (none, or
 * already reaped). */
int uml_vm_exit_fd(const struct uml_vm *vm);
/* Console input; returns bytes taken. */
size_t uml_vm_input(struct uml_vm *vm, const char *buf, size_t len);
/* Has the child ended?  1 with its wait status, else 0. */
int uml_vm_reap(struct uml_vm *vm, int *status);
/* Its run directory ("" when none): UML's mconsole socket is
 * <rundir>/vm/mconsole (see mconsole.c). */
const char *uml_vm_rundir(const struct uml_vm *vm);
/* Kill the process group and reap the child; idempotent. */
void uml_vm_kill(struct uml_vm *vm);
void uml_vm_destroy(struct uml_vm *vm);

#endif
