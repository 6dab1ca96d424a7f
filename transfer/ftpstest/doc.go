// Package ftpstest provides FTPS servers for tests and the demo: an
// in-process ftpserverlib server with fault injection, and launchers for the
// real Debian daemons (vsftpd, ProFTPD, Pure-FTPd) on loopback.
//
// Basics: Start runs the in-process server (explicit TLS required, a fresh
// CA per server, Stats and Faults settable while running). StartVsftpd,
// StartProFTPD and StartPureFTPd run the binaries installed by
// `scripts/ftpservers install` under /opt/camftpd-ftpd (CAMFTPD_FTPD_ROOT),
// each with its own config, certificate, passive port range and logs in a
// temp dir, and return once the port answers 220.
//
// Caveats: real servers need root (they switch to the system user
// camftpd-test, created on first use; vsftpd logs in through the PAM
// service /etc/pam.d/camftpd-test). Files they write belong to that user:
// plant files with Real.WriteFile. A missing binary is an error naming the
// install script, never a skip.
//
// The firmware binary never links it.
package ftpstest
