package queue

import (
	"fmt"
)

// Bounds of ListPage: the page size when none is asked for, and the
// largest page.
const (
	ListPageDefault = 250
	ListPageMax     = 1000
)

// listShedEvery is how many records ListPage reads between two releases of
// the mapped pages (see releasePages): with 50,000 items, every 1,024 let
// the streamed listing's peak RSS grow by 7 MiB, every 128 by 3.6 MiB.
const listShedEvery = 128

// ListPage returns up to limit items (ListPageDefault when limit <= 0, at
// most ListPageMax) in the given states (all when none), in ID order,
// starting after the ID after ("" for the first page), and the ID to pass
// as after for the next page ("" when this was the last one).
//
// Each page is one short read transaction that sheds the mapped pages it
// read: a listing of any length holds neither a transaction nor the queue
// file's pages between pages, and costs memory for one page of items. An
// item that stays in the queue while the pages are read is listed exactly
// once, whatever its state changes (with the state its page saw); an item
// added or dropped meanwhile is listed at most once.
func (q *Queue) ListPage(after string, limit int, states ...State) (items []Item, next string, err error) {
	if limit <= 0 {
		limit = ListPageDefault
	}
	limit = min(limit, ListPageMax)
	want, err := stateCodes(states)
	if err != nil {
		return nil, "", err
	}
	err = q.view("list", after, func(t *txn) error {
		defer releaseMapped(t.tx)
		c := t.bucket(bucketItems).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for i := 0; k != nil; k, v = c.Next() {
			if len(items) == limit {
				next = items[len(items)-1].ID
				return nil
			}
			// The state is the record's second byte (see encodeRec): the
			// records of other states are not decoded.
			if i++; i%listShedEvery == 0 {
				releaseMapped(t.tx) // a rare state is looked for through many records
			}
			if len(v) < 2 || !want[v[1]] {
				continue
			}
			r, err := decodeRec(v)
			if err != nil {
				return fmt.Errorf("item %s: %w", k, err)
			}
			items = append(items, r.Item)
		}
		return nil
	})
	return items, next, err
}

// stateCodes is the set of record state codes of states (all when none).
func stateCodes(states []State) (map[byte]bool, error) {
	if len(states) == 0 {
		states = allStates
	}
	want := map[byte]bool{}
	for _, s := range states {
		code, ok := stateCode[s]
		if !ok {
			return nil, fmt.Errorf("unknown state %q (use pending, inflight, retry, parked, held, done or skipped)", s)
		}
		want[code] = true
	}
	return want, nil
}

// AllStates returns the states in the order List reports them.
func AllStates() []State { return append([]State(nil), allStates...) }
