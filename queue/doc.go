// Package queue is the daemon's source of truth: a durable, idempotent
// capture queue in a bbolt file, with leases, a retry schedule, parking of
// permanent failures and a bounded history of done items.
//
// It imports nothing of the project; it is the only package that imports bbolt.
package queue
