//go:build openssl

package ossl

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ftpCtl is the smallest FTPES control exchange the tests need (AUTH TLS,
// login, PBSZ/PROT, PASV, STOR): a stand-in for transfer's command/reply
// layer, which the engine will share with goftp's raw connection.
type ftpCtl struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	tls  *Conn
	name string
}

const step = 60 * time.Second // generous: 2 shared cores, maybe qemu

func (f *ftpCtl) reply() (int, string) {
	f.t.Helper()
	if err := f.conn.SetDeadline(time.Now().Add(step)); err != nil {
		f.t.Fatal(err)
	}
	var all []string
	for {
		line, err := f.br.ReadString('\n')
		if err != nil {
			f.t.Fatalf("%s: reading a reply: %v (so far %q)", f.name, err, all)
		}
		line = strings.TrimRight(line, "\r\n")
		all = append(all, line)
		if len(line) >= 4 && line[3] == ' ' {
			if code, err := strconv.Atoi(line[:3]); err == nil {
				return code, strings.Join(all, "\n")
			}
		}
	}
}

func (f *ftpCtl) send(line string) {
	f.t.Helper()
	if err := f.conn.SetDeadline(time.Now().Add(step)); err != nil {
		f.t.Fatal(err)
	}
	if _, err := fmt.Fprintf(f.conn, "%s\r\n", line); err != nil {
		f.t.Fatalf("%s: sending %q: %v", f.name, strings.Fields(line)[0], err)
	}
}

func (f *ftpCtl) cmd(line string, want int) string {
	f.t.Helper()
	f.send(line)
	code, text := f.reply()
	if code != want {
		verb := strings.Fields(line)[0]
		f.t.Fatalf("%s: %s: got %q, want %d", f.name, verb, text, want)
	}
	return text
}

// dialAuth connects, reads 220, sends AUTH TLS and hands the connection to
// OpenSSL (not yet handshaken).
func dialAuth(t *testing.T, c *Ctx, addr, serverName string) *ftpCtl {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, step)
	if err != nil {
		t.Fatal(err)
	}
	f := &ftpCtl{t: t, conn: raw, br: bufio.NewReader(raw), name: addr}
	if code, text := f.reply(); code != 220 {
		t.Fatalf("greeting: %q", text)
	}
	f.cmd("AUTH TLS", 234)
	tc, err := c.Client(raw.(*net.TCPConn), serverName, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Close() })
	f.tls, f.conn, f.br = tc, tc, bufio.NewReader(tc)
	return f
}

func (f *ftpCtl) handshake() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	if err := f.tls.Handshake(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// login sends USER, PASS, PBSZ 0, PROT P and TYPE I.
func (f *ftpCtl) login(user, pass string) {
	f.t.Helper()
	f.cmd("USER "+user, 331)
	f.cmd("PASS "+pass, 230)
	f.cmd("PBSZ 0", 200)
	f.cmd("PROT P", 200)
	f.cmd("TYPE I", 200)
}

// pasv returns the data address of a PASV reply.
func (f *ftpCtl) pasv() string {
	f.t.Helper()
	text := f.cmd("PASV", 227)
	i, j := strings.IndexByte(text, '('), strings.IndexByte(text, ')')
	if i < 0 || j < i {
		f.t.Fatalf("PASV reply without an address: %q", text)
	}
	p := strings.Split(text[i+1:j], ",")
	if len(p) != 6 {
		f.t.Fatalf("PASV reply: %q", text)
	}
	hi, _ := strconv.Atoi(p[4])
	lo, _ := strconv.Atoi(p[5])
	return net.JoinHostPort(strings.Join(p[:4], "."), strconv.Itoa(hi*256+lo))
}

// store uploads data as name over a data connection that offers sess, and
// returns what its handshake negotiated and whether the server's
// close_notify came back.
func (f *ftpCtl) store(c *Ctx, serverName string, sess *Session, name string, data []byte) (State, bool) {
	f.t.Helper()
	addr := f.pasv()
	raw, err := net.DialTimeout("tcp", addr, step)
	if err != nil {
		f.t.Fatal(err)
	}
	dc, err := c.Client(raw.(*net.TCPConn), serverName, sess)
	if err != nil {
		f.t.Fatal(err)
	}
	defer dc.Close()
	if err := dc.SetDeadline(time.Now().Add(step)); err != nil {
		f.t.Fatal(err)
	}
	// The handshake runs while the 150 is read: a server may send 150
	// before or after its side of the handshake.
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	hs := make(chan error, 1)
	f.send("STOR " + name)
	go func() { hs <- dc.Handshake(ctx) }()
	code, text := f.reply()
	if herr := <-hs; herr != nil {
		f.t.Fatalf("data connection: %v (control: %q)", herr, text)
	}
	if code != 150 && code != 125 {
		f.t.Fatalf("STOR: %q", text)
	}
	st, err := dc.State()
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := dc.Write(data); err != nil {
		f.t.Fatalf("data connection: %v", err)
	}
	if err := dc.Close(); err != nil {
		f.t.Fatalf("data connection close: %v", err)
	}
	if code, text := f.reply(); code != 226 {
		f.t.Fatalf("after STOR: %q (want 226)", text)
	}
	return st, dc.PeerClosed()
}

func testCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), step)
}
