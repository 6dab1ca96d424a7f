//go:build !linux

package transfer

import "net"

// Bulk mode is Linux only (see bulk_linux.go).
type bulkSocket struct{}

func bulkSocketOf(net.Conn) (bulkSocket, bool) { return bulkSocket{}, false }
func (bulkSocket) setBlocking(bool) bool       { return false }
