// Package daemon wires camftpd together: configuration, the media watcher,
// the upload scheduler, the status socket, signals and the command line.
//
// Nothing imports it but cmd/camftpd; it is the only package that imports fsnotify.
package daemon
