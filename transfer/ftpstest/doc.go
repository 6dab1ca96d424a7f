// Package ftpstest provides FTPS servers for tests and the demo: an
// in-process ftpserverlib server with fault injection, and launchers for the
// real Debian daemons (vsftpd, ProFTPD, Pure-FTPd) on loopback.
//
// The firmware binary never links it.
package ftpstest
