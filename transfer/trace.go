package transfer

import (
	"context"
	"sync"
)

// dialTrace records how far a connect got, for the connection test
// (conntest.go): the guard in front of the control connection once the
// TCP connect succeeded (it counts our commands before TLS). dial finds it
// in its context, as net/http/httptrace does; uploads carry none.
type dialTrace struct {
	mu   sync.Mutex
	addr string // the server's address, once connected
	g    *guard
}

type traceKey struct{}

func withDialTrace(ctx context.Context, tr *dialTrace) context.Context {
	return context.WithValue(ctx, traceKey{}, tr)
}

// traceConnected notes in ctx's trace, if any, that the TCP connect to
// addr succeeded (g: its guard, nil without one).
func traceConnected(ctx context.Context, addr string, g *guard) {
	tr, ok := ctx.Value(traceKey{}).(*dialTrace)
	if !ok {
		return
	}
	tr.mu.Lock()
	tr.addr, tr.g = addr, g
	tr.mu.Unlock()
}

// connected returns the address connected to ("" when the TCP connect
// failed) and the number of commands sent before TLS (-1: unknown).
func (tr *dialTrace) connected() (addr string, plainCmds int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.g == nil {
		return tr.addr, -1
	}
	return tr.addr, int(tr.g.plainCmds.Load())
}
