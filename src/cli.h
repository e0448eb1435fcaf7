/*
 * cli.h - command-line administration: `notesd user ...`, `notesd rekey` and
 * `notesd audit verify`. All read the same environment as serve (NOTES_TLS_*
 * not needed) and return a process exit status (sysexits.h values).
 */
#ifndef NOTESD_CLI_H
#define NOTESD_CLI_H

/** `notesd user add NAME --role admin|user` (password on stdin),
 *  `notesd user set-role NAME ROLE`, `notesd user disable NAME`. */
int cli_user(int argc, char **argv, char *const *envp);
/** `notesd rekey`: re-encrypt every sealed value under the active data key. */
int cli_rekey(int argc, char **argv, char *const *envp);
/** `notesd audit verify [DIR]`: check the audit chain (DIR defaults to
 *  NOTES_AUDIT_DIR) and print a report on stdout. 0 when it verifies, 1 at
 *  the first problem, 74 when the files cannot be read, 64/78 as usual. */
int cli_audit(int argc, char **argv, char *const *envp);

#endif
