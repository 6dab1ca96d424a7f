//go:build !linux

package daemon

import "errors"

var errNoLease = errors.New("file leases not available")

// openForWriting cannot be told without Linux's file leases.
func openForWriting(string) (bool, error) { return false, errNoLease }
