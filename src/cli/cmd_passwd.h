/*
 * cmd_passwd.h - `edgeplane passwd`: add, change or delete a user in a
 * broker password file (format in src/svc/auth/passwd.h and
 * docs/security.md).
 */
#ifndef EP_CLI_CMD_PASSWD_H
#define EP_CLI_CMD_PASSWD_H

int ep_cmd_passwd(int argc, char **argv);

#endif
