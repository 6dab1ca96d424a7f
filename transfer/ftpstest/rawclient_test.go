package ftpstest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawConn is a tiny stdlib FTPES client: just enough to test the servers.
type rawConn struct {
	c   net.Conn
	r   *bufio.Reader
	cfg *tls.Config
}

func clientTLS(t testing.TB, caPEM []byte, maxTLS12 bool, cache bool) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bad CA PEM")
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if maxTLS12 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	if cache {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	}
	return cfg
}

func dialRaw(addr string, cfg *tls.Config) (*rawConn, int, string, error) {
	c, err := net.DialTimeout("tcp", addr, within(5*time.Second))
	if err != nil {
		return nil, 0, "", err
	}
	_ = c.SetDeadline(time.Now().Add(within(20 * time.Second)))
	rc := &rawConn{c: c, r: bufio.NewReader(c), cfg: cfg}
	code, msg, err := rc.reply()
	if err != nil {
		c.Close()
		return nil, 0, "", err
	}
	return rc, code, msg, nil
}

func (rc *rawConn) Close() { rc.c.Close() }

func (rc *rawConn) reply() (int, string, error) {
	var msg []string
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			return 0, strings.Join(msg, "\n"), err
		}
		line = strings.TrimRight(line, "\r\n")
		msg = append(msg, line)
		if len(line) >= 4 && line[3] == ' ' || len(line) == 3 {
			code, err := strconv.Atoi(line[:3])
			if err == nil {
				return code, strings.Join(msg, "\n"), nil
			}
		}
	}
}

func (rc *rawConn) cmd(format string, args ...any) (int, string, error) {
	if _, err := fmt.Fprintf(rc.c, format+"\r\n", args...); err != nil {
		return 0, "", err
	}
	return rc.reply()
}

func (rc *rawConn) expect(want int, format string, args ...any) (string, error) {
	code, msg, err := rc.cmd(format, args...)
	if err != nil {
		return msg, fmt.Errorf("%s: %w", strings.Fields(format)[0], err)
	}
	if code != want {
		return msg, fmt.Errorf("%s: got %q, want %d", strings.Fields(format)[0], msg, want)
	}
	return msg, nil
}

func (rc *rawConn) authTLS() error {
	if _, err := rc.expect(234, "AUTH TLS"); err != nil {
		return err
	}
	tc := tls.Client(rc.c, rc.cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("control handshake: %w", err)
	}
	rc.c = tc
	rc.r = bufio.NewReader(tc)
	return nil
}

func (rc *rawConn) login(user, pass string) error {
	if err := rc.authTLS(); err != nil {
		return err
	}
	if _, err := rc.expect(331, "USER %s", user); err != nil {
		return err
	}
	if _, err := rc.expect(230, "PASS %s", pass); err != nil {
		return err
	}
	for _, c := range []string{"PBSZ 0", "PROT P", "TYPE I"} {
		if _, err := rc.expect(200, "%s", c); err != nil {
			return err
		}
	}
	return nil
}

func (rc *rawConn) pasv() (string, error) {
	msg, err := rc.expect(227, "PASV")
	if err != nil {
		return "", err
	}
	i, j := strings.Index(msg, "("), strings.Index(msg, ")")
	if i < 0 || j < i {
		return "", fmt.Errorf("bad PASV reply %q", msg)
	}
	f := strings.Split(msg[i+1:j], ",")
	if len(f) != 6 {
		return "", fmt.Errorf("bad PASV reply %q", msg)
	}
	p1, _ := strconv.Atoi(f[4])
	p2, _ := strconv.Atoi(f[5])
	return net.JoinHostPort(strings.Join(f[:4], "."), strconv.Itoa(p1*256+p2)), nil
}

type storResult struct {
	Code     int
	Msg      string
	Resumed  bool
	Version  uint16
	Suite    uint16
	WriteErr error
}

// stor uploads data (from offset rest when > 0) over a PASV TLS data
// connection: close_notify then read to EOF before closing, so TLS 1.3
// session tickets are consumed and the tail is not lost.
func (rc *rawConn) stor(name string, data []byte, rest int64, writeTimeout time.Duration) (storResult, error) {
	var res storResult
	addr, err := rc.pasv()
	if err != nil {
		return res, err
	}
	dc, err := net.DialTimeout("tcp", addr, within(5*time.Second))
	if err != nil {
		return res, fmt.Errorf("data dial: %w", err)
	}
	defer dc.Close()
	if rest > 0 {
		if _, err := rc.expect(350, "REST %d", rest); err != nil {
			return res, err
		}
	}
	if _, err := fmt.Fprintf(rc.c, "STOR %s\r\n", name); err != nil {
		return res, err
	}
	tc := tls.Client(dc, rc.cfg)
	_ = dc.SetDeadline(time.Now().Add(within(10 * time.Second)))
	hs := make(chan error, 1)
	go func() { hs <- tc.Handshake() }()
	code, msg, err := rc.reply()
	if err != nil {
		return res, err
	}
	if code != 150 && code != 125 {
		dc.Close()
		<-hs //nolint:errcheck // the close above ends the handshake: the refusal is the result
		res.Code, res.Msg = code, msg
		return res, nil
	}
	if err := <-hs; err != nil {
		return res, fmt.Errorf("data handshake: %w", err)
	}
	st := tc.ConnectionState()
	res.Resumed, res.Version, res.Suite = st.DidResume, st.Version, st.CipherSuite
	if writeTimeout > 0 {
		_ = dc.SetDeadline(time.Now().Add(writeTimeout))
	}
	_, res.WriteErr = tc.Write(data[rest:])
	if res.WriteErr == nil {
		_ = tc.CloseWrite()
		_ = dc.SetDeadline(time.Now().Add(within(10 * time.Second)))
		_, _ = io.Copy(io.Discard, tc)
	}
	tc.Close()
	var ne net.Error
	if errors.As(res.WriteErr, &ne) && ne.Timeout() {
		return res, nil // stalled: the server will not answer
	}
	res.Code, res.Msg, err = rc.reply()
	return res, err
}

// upload logs in and stores name; it returns the STOR result.
func rawUpload(addr string, cfg *tls.Config, user, pass, name string, data []byte) (storResult, error) {
	rc, code, msg, err := dialRaw(addr, cfg)
	if err != nil {
		return storResult{}, err
	}
	defer rc.Close()
	if code != 220 {
		return storResult{}, fmt.Errorf("greeting %q", msg)
	}
	if err := rc.login(user, pass); err != nil {
		return storResult{}, err
	}
	res, err := rc.stor(name, data, 0, 0)
	if err != nil {
		return res, err
	}
	if res.Code != 226 {
		if res.WriteErr != nil {
			return res, fmt.Errorf("STOR: %q (write: %w)", res.Msg, res.WriteErr)
		}
		return res, fmt.Errorf("STOR: %q", res.Msg)
	}
	_, _, _ = rc.cmd("QUIT")
	return res, nil
}
