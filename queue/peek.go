package queue

// Peek returns up to n pending items in the order Lease would hand them
// out (highest priority first, then first-in first-out), without leasing
// them: a scheduler whose workers are all busy looks at what waits (see
// the daemon's overtaking). It is one short read transaction that decodes
// only those items. Retry items that are due and expired leases become
// pending at the next Lease and are not returned before it.
func (q *Queue) Peek(n int) ([]Item, error) {
	var out []Item
	err := q.viewSoft("peek", "", func(t *txn, soft map[string]*softLease) error {
		c := t.bucket(indexBucket[Pending]).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			if _, held := soft[string(v)]; held {
				continue // leased, not written yet (softlease.go)
			}
			r, err := t.get(string(v))
			if err != nil {
				return err
			}
			out = append(out, r.Item)
		}
		return nil
	})
	return out, err
}
