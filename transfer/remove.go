package transfer

import (
	"context"
	"fmt"
)

// RemoveTemps deletes, on one connection, temporary files that uploads
// left on the server (see TempPaths) for captures that will not be sent
// any more (vanished, changed, dropped). It refuses, without a command, a
// path that is not a temporary name of camftpd, so that no other file is
// ever deleted. A file that is not there (550) counts as deleted; another
// refusal is logged and counts as settled too (deleting is a courtesy: the
// account may lack the right). It returns how many paths, from the first,
// are settled; err (an *Error) is why the next one is not: the connection
// failed, or ctx ended.
func (c *Client) RemoveTemps(ctx context.Context, paths []string) (settled int, err error) {
	if c.cfgErr != nil {
		return 0, c.cfgErr
	}
	for _, p := range paths {
		if err := CheckPath(p); err != nil || !isTempName(p) {
			return 0, &Error{Class: Permanent, Op: "remove temporary file", Msg: fmt.Sprintf("%q is not a temporary file of camftpd: not deleted", p)}
		}
	}
	u := &upload{c: c}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { u.abort(); close(done) })
	defer func() {
		if !stop() {
			<-done
		}
	}()
	for retried := false; ; retried = true {
		s, unchecked, err := c.session(ctx, u)
		if err != nil {
			return settled, c.finalErr(ctx, "remove temporary file", err)
		}
		n, err := c.deleTemps(s, paths[settled:])
		settled += n
		u.setCur(nil)
		if err == nil {
			c.put(s)
			return settled, nil
		}
		s.close()
		if !unchecked || retried || n > 0 || ctx.Err() != nil {
			return settled, c.finalErr(ctx, "remove temporary file", err)
		}
		// The idle connection taken without NOOP was dead: once more.
	}
}

// deleTemps sends DELE for each path; it stops at a failed connection.
func (c *Client) deleTemps(s *session, paths []string) (int, error) {
	for i, p := range paths {
		code, msg, err := s.cmd("DELE " + p)
		switch {
		case err != nil:
			return i, err
		case code == 421:
			s.broken = true
			return i, &replyError{code: code, msg: msg}
		case code/100 == 2:
			c.log.Info("deleted a temporary file left by an upload that will not resume", "path", p)
		case code != 550:
			c.log.Warn("server refused to delete a temporary file left by an upload; it stays", "path", p, "reply", fmt.Sprintf("%d %s", code, oneLine(msg)))
		}
	}
	return len(paths), nil
}
