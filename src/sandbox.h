/*
 * sandbox.h - least privilege for the serving process: privilege drop,
 * no_new_privs, capabilities, Landlock and a seccomp-bpf filter.
 *
 * sandbox_enter() runs once, on the loop thread, after every listener is
 * bound and the keys, certificate, database and audit folder are open, and
 * before readiness is announced. From then on the process cannot regain
 * root, gain privileges through exec, touch files outside its database and
 * audit folders (Landlock, where the kernel offers it), or make a system
 * call outside one allow-list (anything else kills the process).
 */
#ifndef NOTESD_SANDBOX_H
#define NOTESD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/** The account a root-started server drops to. */
struct sandbox_user {
    uid_t uid;
    gid_t gid;
    char name[64];
};

/**
 * Enter the sandbox, in this order: when started as root, hand the database
 * and audit folders to NOTES_USER and drop to it (verified); clear every
 * capability; set no_new_privs; apply Landlock (NOTES_LANDLOCK; a kernel
 * without it is a warning); install the seccomp filter (NOTES_SECCOMP).
 * Returns 0, or a negative ERR_* with one line in `err`: the caller must
 * then stop without serving. Blocking (start-up), loop thread; the process
 * must have no other thread yet (Landlock binds only the calling thread and
 * those it creates later).
 */
int sandbox_enter(const struct config *cfg, char *err, size_t errlen);

/**
 * sandbox_enter() for a server_hooks.started callback: a failure is logged
 * (one error line) and non-zero returned, so the server stops before it
 * serves anyone.
 */
int sandbox_started(const struct config *cfg);

/**
 * Resolve NOTES_USER: the name given, or `notesd` when that account exists,
 * else `nobody`. Refuses root and unknown names (ERR_CONFIG).
 */
int sandbox_resolve_user(const struct config *cfg, struct sandbox_user *out, char *err, size_t errlen);

/**
 * When started as root, resolve NOTES_USER as sandbox_enter() will, so a
 * user it could not drop to is refused before anything is opened (and by
 * check-config): 0 or ERR_CONFIG with `err` naming NOTES_USER. Otherwise
 * 0 (NOTES_USER does not apply). Blocking (reads the user database).
 */
int sandbox_check_user(const struct config *cfg, char *err, size_t errlen);

/**
 * The user this process serves as: NOTES_USER's uid when started as root
 * (it drops to that user before serving), else the effective uid. Files
 * that user owns are ours too (audit.c's ownership check). Blocking (reads
 * the user database).
 */
uid_t sandbox_run_uid(const struct config *cfg);

/**
 * Install the serving process's seccomp filter (the one sandbox_enter()
 * installs) on every thread, after setting no_new_privs. A forbidden call
 * kills the whole process with SIGSYS. Returns 0 or ERR_INTERNAL.
 */
int sandbox_seccomp_install(char *err, size_t errlen);

/** The linked libseccomp's version, "major.minor.micro". */
const char *sandbox_seccomp_version(void);

/** How many system calls the filter allows (for the start-up log). */
size_t sandbox_seccomp_allowed(void);

/** The kernel's Landlock ABI version; 0 when it has none (ENOSYS) or it is
 *  off (EOPNOTSUPP); ERR_INTERNAL when the query was refused (EPERM from a
 *  filter around the process), which must not be taken for "none". */
int sandbox_landlock_abi(void);

/**
 * Restrict file access to the database folder and the audit folder (read,
 * write, create, rename and remove files there) and deny everything else,
 * executing included; on ABI 4 and later also TCP bind and connect. The
 * rules sandbox_enter() applies. Needs no_new_privs. Returns 0, 1 when the
 * kernel has no Landlock (nothing applied), or ERR_* with `err` set.
 */
int sandbox_landlock_apply(const struct config *cfg, char *err, size_t errlen);

/** Set no_new_privs (inherited by threads and children; never undone). */
int sandbox_no_new_privs(char *err, size_t errlen);

#endif
