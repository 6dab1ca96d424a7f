//go:build !linux

package transfer

import "net"

// bulkMode: bulk mode is Linux only (see bulk_linux.go); always off here.
type bulkMode struct{}

func newBulk(net.Conn) *bulkMode { return nil }
func (b *bulkMode) active() bool { return false }
func (b *bulkMode) set(on bool)  {}
