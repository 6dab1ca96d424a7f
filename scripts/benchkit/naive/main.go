// Command naive is the "goftp used naively" baseline of camftpd's benchmarks
// (scripts/bench): it dials one goftp client with a plain tls.Config and
// calls goftp's Client.Store once per file, in order, with no temp names,
// no verification and no tuning. The only non-default is a TLS session
// cache, without which vsftpd (require_ssl_reuse=YES) refuses every data
// connection. It is a peer measured by the harness, not part of camftpd.
//
//	naive -addr 127.0.0.1:2121 -user u -pass p -ca ca.pem [-servername localhost] file...
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/secsy/goftp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "naive:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "", "server host:port")
	user := flag.String("user", "", "login")
	pass := flag.String("pass", "", "password")
	caFile := flag.String("ca", "", "PEM file of the CA that signed the server certificate")
	serverName := flag.String("servername", "", "name to verify the certificate against (default: host of -addr)")
	debug := flag.Bool("debug", false, "log goftp's protocol exchange to stderr")
	flag.Parse()
	if *addr == "" || *caFile == "" || flag.NArg() == 0 {
		return errors.New("usage: naive -addr host:port -user U -pass P -ca ca.pem file [file ...]")
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", *caFile)
	}
	name := *serverName
	if name == "" {
		host, _, err := net.SplitHostPort(*addr)
		if err != nil {
			return err
		}
		name = host
	}
	cfg := goftp.Config{
		User:     *user,
		Password: *pass,
		TLSConfig: &tls.Config{
			ServerName:         name,
			RootCAs:            pool,
			ClientSessionCache: tls.NewLRUClientSessionCache(0),
		},
		TLSMode: goftp.TLSExplicit,
		Timeout: 60 * time.Second,
	}
	if *debug {
		cfg.Logger = os.Stderr
	}
	c, err := goftp.DialConfig(cfg, *addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, p := range flag.Args() {
		if err := store(c, p); err != nil {
			return err
		}
	}
	return nil
}

func store(c *goftp.Client, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := c.Store(filepath.Base(p), f); err != nil {
		return fmt.Errorf("store %s: %w", p, err)
	}
	return nil
}
