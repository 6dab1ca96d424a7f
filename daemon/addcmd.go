package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The command line's side of camftpd queue add (add.go is the daemon's):
// a method of queueCmd (cli.go), whose other methods call these helpers;
// cli.go and this file depend on each other as one type's method set.

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// add runs camftpd queue add: through the daemon's socket when it runs,
// else on the queue file. Exit status 0 when every path was handled, 1
// when a line says error, 2 when nothing could be asked.
func (c *queueCmd) add(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, "camftpd queue add: give the files, folders or patterns to send (relative to media_dir), e.g. 100MSDCF/DSC00001.JPG '100MSDCF/*.ARW'")
		return 2
	}
	errs := 0
	show := func(r AddResult) {
		if r.Result == AddError {
			errs++
		}
		printAdd(c.stdout, r)
	}
	if !c.live {
		a := newAdder(c.cfg, c.q, show)
		a.run(c.ctx, args)
		return min(errs, 1)
	}
	body, err := json.Marshal(AddRequest{Paths: args})
	if err == nil {
		err = socketStream(c.ctx, c.sock, "/add", body, func(dec *json.Decoder) error {
			for dec.More() {
				var r AddResult
				if err := dec.Decode(&r); err != nil {
					return err
				}
				show(r)
			}
			return nil
		})
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "camftpd queue add: %s\n", escName(err.Error()))
		return 2
	}
	return min(errs, 1)
}

// printAdd prints one result: what happened, the file, the detail.
func printAdd(w io.Writer, r AddResult) {
	if r.Result == AddError {
		name := r.Arg
		if r.File != "" {
			name = r.File
		}
		fmt.Fprintf(w, "error: %s: %s\n", escName(name), escName(r.Detail))
		return
	}
	line := fmt.Sprintf("%-17s  %s", r.Result, escName(r.File))
	if r.Detail != "" {
		line += " (" + escName(r.Detail) + ")"
	}
	fmt.Fprintln(w, line)
}

// socketStream POSTs a JSON body to the status socket and hands the
// answer, read as it comes, to read. Only the wait for the answer's start
// has a deadline: an add over many files takes as long as it takes.
func socketStream(ctx context.Context, sock, path string, body []byte, read func(*json.Decoder) error) error {
	cl := socketClient(sock)
	cl.Transport.(*http.Transport).ResponseHeaderTimeout = 10 * time.Second
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://camftpd"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s", strings.TrimSpace(string(b)))
	}
	return read(json.NewDecoder(resp.Body))
}

// escName makes a file name (or any text from the card) safe to print:
// control characters, invalid UTF-8 and bidirectional overrides are
// escaped Go-style (\n, \x1b, \u202e), and so is the backslash, so that a
// name cannot move the cursor, recolour the terminal or pass for another.
func escName(s string) string {
	safe := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || unsafeRune(r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f
}
