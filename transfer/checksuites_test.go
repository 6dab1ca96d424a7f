package transfer

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer/ftpstest"
)

// dh2048 is the 2048-bit DH parameter file ProFTPD serves the DHE suites
// with (OpenSSL's default security level refuses smaller groups).
func dh2048(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("ossl/testdata/dh2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkEverySuite is `camftpd check`'s suite table against each of the 13
// suites alone on a real server (TLS 1.2), in the build under test
// (TestCheckEverySuiteServer in the default build, TestEngineCheckEverySuite
// in the openssl build). The openssl build (Engine() != nil): 13 rows, every one usable,
// the server's one suite accepted by the engine that has it and the 12
// others refused, the policy handshake negotiated it (by OpenSSL for the
// 7 crypto/tls lacks), and the verdict pass or warn by its class. The
// default build: 6 rows (the suites crypto/tls has), the 7 others in the
// table of suites this device cannot negotiate; a server whose one suite
// is among those 7 fails the check and is told which it would accept.
func checkEverySuite(t *testing.T) {
	dh := dh2048(t)
	eng := Engine()
	for _, su := range tlspolicy.Table() {
		t.Run(su.OpenSSL, func(t *testing.T) {
			server, o := ftpstest.SuiteServer(su.OpenSSL, dh)
			tg := startTargetWith(t, server, ftpstest.Options{}, o)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			st, err := tlspolicy.Check(ctx, net.JoinHostPort(tg.host, strconv.Itoa(tg.port)), tlspolicy.Options{ServerName: tg.serverName, CAPEM: [][]byte{tg.capem},
				MaxTLS12: true, Engine: eng, Timeout: 30 * time.Second}, &out)
			report := out.String()
			t.Logf("check:\n%s", report)
			rows := checkRows(report)
			for _, other := range tlspolicy.Table() {
				row, ok := rows[other.Name]
				usable := other.Implemented || eng != nil
				switch {
				case !ok:
					t.Errorf("no row for %s", other.Name)
				case usable == strings.Contains(row.table, "cannot"):
					t.Errorf("%s in table %q", other.Name, row.table)
				case other.ID == su.ID && usable && !strings.HasSuffix(row.text, "accepted"):
					t.Errorf("the server's suite %s: %q, want accepted", other.Name, row.text)
				case other.ID == su.ID && !usable && !strings.Contains(row.text, "would accept"):
					t.Errorf("the server's suite %s: %q, want \"would accept\"", other.Name, row.text)
				case other.ID != su.ID && !strings.HasSuffix(row.text, "refused"):
					t.Errorf("%s: %q, want refused", other.Name, row.text)
				case eng != nil && other.Implemented != strings.Contains(row.text, "crypto/tls"):
					t.Errorf("%s: %q names the wrong engine", other.Name, row.text)
				}
			}
			if len(rows) != 13 {
				t.Errorf("%d suite rows, want 13", len(rows))
			}
			want := tlspolicy.CheckPass
			if su.Class != tlspolicy.Recommended {
				want = tlspolicy.CheckWarn
			}
			if !su.Implemented && eng == nil {
				want = tlspolicy.CheckFail
			}
			if st != want {
				t.Errorf("status %v (%v), want %v", st, err, want)
			}
			if want != tlspolicy.CheckFail && !strings.Contains(report, "negotiated:   TLS 1.2, "+su.Name) {
				t.Errorf("the policy handshake did not negotiate %s", su.Name)
			}
			if eng != nil && !su.Implemented && !strings.Contains(report, su.Name+" (deprecated), by "+eng.Name()) {
				t.Errorf("the policy handshake's engine is not named %q", eng.Name())
			}
		})
	}
}

// checkRow is one suite's row of Check's report and the table it is in.
type checkRow struct{ table, text string }

// checkRows finds the suite rows ("  TLS_...") of Check's TLS 1.2 tables
// by suite name.
func checkRows(report string) map[string]checkRow {
	rows := map[string]checkRow{}
	table := ""
	for _, l := range strings.Split(report, "\n") {
		if strings.HasPrefix(l, "suites of the spec") {
			table = l
			continue
		}
		f := strings.Fields(l)
		if table == "" || len(f) < 3 || !strings.HasPrefix(l, "  TLS_") {
			continue
		}
		rows[f[0]] = checkRow{table: table, text: strings.TrimSpace(l)}
	}
	return rows
}
