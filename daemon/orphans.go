package daemon

import (
	"context"
	"time"

	"github.com/camftpd/camftpd/queue"
	"github.com/camftpd/camftpd/transfer"
)

// orphansOf lists the temporary files an upload of it may have left on
// each server of cfg (the names its uploads use: transfer.TempPaths of the
// remote path the server's template gives).
func orphansOf(cfg *Config, it queue.Item) []queue.Orphan {
	var out []queue.Orphan
	for _, srv := range cfg.Servers {
		remote, err := transfer.RenderRemote(srv.RemoteTemplate, it.Capture.Rel, it.Capture.ModTime)
		if err != nil {
			continue // never uploaded to that server under this template
		}
		for _, p := range transfer.TempPaths(remote, it.ID) {
			out = append(out, queue.Orphan{Server: srv.Name, Path: p})
		}
	}
	return out
}

// noteOrphans records durably, before it is settled for good (vanished,
// changed, dropped), the temporary files an upload of it may have left on
// the servers; the workers delete them at their next connection.
func (d *Daemon) noteOrphans(q *queue.Queue, cfg *Config, it queue.Item) {
	if err := q.AddOrphans(orphansOf(cfg, it)); err != nil {
		d.log.Error("cannot record the temporary files to delete from the servers; they stay there", "file", it.Capture.Rel, "id", it.ID, "err", err)
		return
	}
	d.orphanGen.Add(1)
}

// vanished settles it as vanished (its file is gone or changed). sent says
// an upload of it began in this attempt; otherwise only an earlier attempt
// (not it.FirstLease) can have left a temporary file.
func (w *worker) vanished(it queue.Item, sent bool) {
	q := w.d.Queue()
	if sent || !it.FirstLease {
		w.d.noteOrphans(q, w.cfg, it)
	}
	w.d.durable("vanished", it, q.Vanished(it.ID))
}

// orphanBatch is how many temporary files a worker deletes on one
// connection before it looks at the queue again.
const orphanBatch = 32

// cleanOrphans deletes the recorded temporary files of the active server
// (see noteOrphans) on the worker's connection to it. It runs when the
// worker starts and after an item that left orphans or an upload; after a
// failure it waits retry_min.
func (w *worker) cleanOrphans(ctx context.Context) {
	d, q := w.d, w.d.Queue()
	gen := d.orphanGen.Load()
	if w.orphansSeen && w.orphanGen == gen || !d.canRun() || time.Since(w.orphanErr) < w.cfg.RetryMin {
		return
	}
	idx := d.activeIndex()
	srv := w.cfg.Servers[idx].Name
	for ctx.Err() == nil {
		paths, err := q.Orphans(srv, orphanBatch)
		if err != nil {
			return
		}
		if len(paths) == 0 {
			// Those of an earlier run too: each worker looks once at start.
			w.orphansSeen, w.orphanGen = true, gen
			return
		}
		client, _, err := w.client(idx)
		if err != nil {
			return
		}
		n, err := client.RemoveTemps(ctx, paths)
		if ferr := q.ForgetOrphans(srv, paths[:n]); ferr != nil {
			d.log.Error("temporary files deleted from the server but still listed in the queue", "server", srv, "err", ferr)
			err = ferr
		}
		if err != nil {
			if ctx.Err() == nil {
				w.orphanErr = time.Now()
				d.log.Info("cannot delete temporary files left on the server now; trying again later", "server", srv, "err", err)
			}
			return
		}
	}
}
