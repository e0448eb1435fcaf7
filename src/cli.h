/*
 * cli.h - command-line administration: `notesd user ...` and `notesd rekey`.
 * Both read the same environment as serve (NOTES_TLS_* not needed) and
 * return a process exit status (sysexits.h values).
 */
#ifndef NOTESD_CLI_H
#define NOTESD_CLI_H

/** `notesd user add NAME --role admin|user` (password on stdin),
 *  `notesd user set-role NAME ROLE`, `notesd user disable NAME`. */
int cli_user(int argc, char **argv, char *const *envp);
/** `notesd rekey`: re-encrypt every sealed value under the active data key. */
int cli_rekey(int argc, char **argv, char *const *envp);

#endif
