package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/camftpd/camftpd/board"
	"github.com/camftpd/camftpd/tlspolicy"
	"github.com/camftpd/camftpd/transfer"
)

// DefaultConfigPath is where `camftpd run` looks without -config.
const DefaultConfigPath = "/etc/camftpd.toml"

// Config is a validated configuration. Build it with LoadConfig or ParseConfig.
type Config struct {
	Path          string
	Board         string
	Profile       board.Profile
	MediaDir      string
	StateDir      string
	Include       []string
	Exclude       []string
	RawJPEG       string // both | jpeg | raw | jpeg-first (see overtake.go)
	Settle        time.Duration
	Backlog       string // "new": captures on the card at the first start are held (the backlog); "all": sent
	OnlyProtected bool   // send only protected captures (no write permission: the FAT read-only attribute)
	Workers       int
	RecordSHA256  bool   // hash every upload with SHA-256 for the done record, even when the server cannot check it
	LogFormat     string // text | json
	LogLevel      slog.Level
	StatusSocket  string
	Active        string
	Failover      bool
	FailoverAfter int
	FailbackAfter time.Duration // while failed over: how often the active server is tried again
	RetryMin      time.Duration
	RetryMax      time.Duration
	CertWarnDays  int // a server certificate expiring within this many days is a warning; 0: none
	Servers       []Server
	// The upload policy (powerconfig.go): below SlowLink bytes per second
	// (0 = off) movies wait; below BatteryLow percent (0 = off), not
	// charging, only what BatteryLowSend allows is sent.
	SlowLink       int64
	BatteryLow     int
	BatteryLowSend string // protected | stills | nothing
}

// Server is one [[server]] slot.
type Server struct {
	Name           string
	Host           string
	Port           int
	User           string
	Password       Secret
	PasswordFile   string
	RemoteTemplate string
	SameName       transfer.SameName
	Passive        bool
	Secure         bool   // false: plain FTP (connopts.go)
	ActivePorts    [2]int // passive = false: the ports listened on, 0 = any
	TLSMode        tlspolicy.Mode
	MaxTLS12       bool
	CAFiles        []string
	CAPEM          [][]byte
	Pins           []string
	BandwidthLimit int64 // bytes per second, 0 = none
	Timeout        time.Duration
	ConnectTimeout time.Duration
}

// Secret is a string that never prints.
type Secret string

func (Secret) String() string                 { return "<redacted>" }
func (Secret) GoString() string               { return "<redacted>" }
func (Secret) LogValue() slog.Value           { return slog.StringValue("<redacted>") }
func (Secret) MarshalJSON() ([]byte, error)   { return []byte(`"<redacted>"`), nil }
func (s Secret) Format(f fmt.State, _ rune)   { fmt.Fprint(f, "<redacted>") }
func (s Secret) reveal() string               { return string(s) }
func (s Secret) MarshalText() ([]byte, error) { return []byte("<redacted>"), nil }

// ActiveIndex returns the index of the active server.
func (c *Config) ActiveIndex() int {
	for i, s := range c.Servers {
		if s.Name == c.Active {
			return i
		}
	}
	return 0
}

// ConfigError is one problem in a configuration file.
type ConfigError struct {
	File string
	Line int // 0 when the key is missing from the file
	Key  string
	Msg  string
	Fix  string
}

func (e ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("; fix: " + e.Fix)
	}
	return b.String()
}

// ConfigErrors is every problem found, in file order.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// LoadConfig reads and validates the file at path. Every problem is reported
// at once as ConfigErrors.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, ConfigErrors{{File: path, Msg: "cannot read config: " + unwrapPathErr(err),
			Fix: "create it (see camftpd.example.toml) or pass -config FILE"}}
	}
	c, err := ParseConfig(path, string(b))
	if err != nil {
		return nil, err
	}
	for _, srv := range c.Servers {
		if mode, open := openToOthers(path); open && srv.PasswordFile == "" && srv.Password != "" {
			return nil, ConfigErrors{{File: path, Key: "server " + srv.Name + ": password",
				Msg: fmt.Sprintf("the file holds a password and can be read by group or others (mode %04o)", mode),
				Fix: "chmod 600 " + path + " (or move the password to a password_file of mode 0600)"}}
		}
	}
	return c, nil
}

// openToOthers reports whether the file at path can be read or written by
// its group or others, with its permission bits.
func openToOthers(path string) (os.FileMode, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return st.Mode().Perm(), st.Mode().Perm()&0o077 != 0
}

// newMatcher returns the capture rules of c (here, not in patterns.go,
// which the configuration's checks use).
func newMatcher(c *Config) *matcher {
	m := &matcher{rawJPEG: c.RawJPEG}
	for _, p := range c.Include {
		m.include = append(m.include, strings.ToLower(p))
	}
	for _, p := range c.Exclude {
		m.exclude = append(m.exclude, strings.ToLower(p))
	}
	return m
}

func unwrapPathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

type cfgParser struct {
	file  string
	lines keyLines
	errs  ConfigErrors
}

func (p *cfgParser) add(key, msg, fix string) {
	p.errs = append(p.errs, ConfigError{File: p.file, Line: p.lines.line(key), Key: key, Msg: msg, Fix: fix})
}

var topKeys = []string{"board", "media_dir", "state_dir", "include", "exclude", "raw_jpeg", "settle", "backlog", "only_protected", "workers", "record_sha256",
	"log_format", "log_level", "status_socket", "storage_mount", "interface", "led", "active", "failover", "failover_after", "failback_after", "retry_min", "retry_max", "server", "cert_warn_days"}
var serverKeys = []string{"name", "host", "port", "user", "password", "password_file", "remote_template", "same_name",
	"passive", "secure", "active_ports", "tls_mode", "max_tls12", "ca_files", "pins", "bandwidth_limit", "timeout", "connect_timeout"}

// ParseConfig validates src (the text of file name) and resolves defaults
// from the board profile.
func ParseConfig(name, src string) (*Config, error) {
	p := &cfgParser{file: name, lines: locateKeys(src)}
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, ConfigErrors{{File: name, Line: pe.Position.Line, Msg: "TOML syntax: " + pe.Message,
				Fix: "correct the syntax at this line (strings need quotes, tables are [name] or [[server]])"}}
		}
		return nil, ConfigErrors{{File: name, Msg: "TOML: " + err.Error(), Fix: "correct the file's syntax"}}
	}
	c := &Config{Path: name}
	p.unknown("", raw, append(topKeys, powerKeys...))
	p.places(raw, c)
	p.captures(raw, c)
	p.running(raw, c)
	p.servers(raw, c)
	p.power(raw, c)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			li, lj := p.errs[i].Line, p.errs[j].Line
			if li == 0 || lj == 0 {
				return li != 0 && lj == 0
			}
			return li < lj
		})
		return nil, p.errs
	}
	return c, nil
}

// places reads where things are: board profile, media and state folders,
// the card's mount point, the network interface, the LED.
func (p *cfgParser) places(raw map[string]any, c *Config) {
	c.Board = p.str(raw, "", "board", "generic")
	prof, err := board.Lookup(c.Board)
	if err != nil {
		p.add("board", err.Error(), `use a known board profile, e.g. board = "generic"`)
	}
	c.Profile = prof
	c.MediaDir = p.str(raw, "", "media_dir", prof.MediaDir)
	if c.MediaDir == "" {
		p.add("media_dir", "no media directory", `set media_dir = "/path/to/DCIM" (the board profile gives none)`)
	} else if !filepath.IsAbs(c.MediaDir) {
		p.add("media_dir", fmt.Sprintf("%q is not an absolute path", c.MediaDir), "write it from the root, e.g. /media/card/DCIM")
	}
	c.Profile.MediaDir = c.MediaDir
	c.StateDir = p.str(raw, "", "state_dir", prof.StateDir)
	if c.StateDir == "" {
		p.add("state_dir", "no state directory", `set state_dir = "/var/lib/camftpd"`)
	} else if !filepath.IsAbs(c.StateDir) {
		p.add("state_dir", fmt.Sprintf("%q is not an absolute path", c.StateDir), "write it from the root, e.g. /var/lib/camftpd")
	}
	c.Profile.StateDir = c.StateDir
	c.Profile.StorageMount = p.str(raw, "", "storage_mount", prof.StorageMount)
	if m := c.Profile.StorageMount; m != "" && !filepath.IsAbs(m) {
		p.add("storage_mount", fmt.Sprintf("%q is not an absolute path", m), `give the card's mount point, e.g. "/mnt/media", or "" to not follow it`)
	}
	c.Profile.Interface = p.str(raw, "", "interface", prof.Interface)
	c.Profile.LED = p.str(raw, "", "led", prof.LED)
}

// captures reads which files are captures and when they are sent.
func (p *cfgParser) captures(raw map[string]any, c *Config) {
	c.Include = p.strs(raw, "", "include", c.Profile.Patterns)
	if len(c.Include) == 0 {
		c.Include = DefaultPatterns
	}
	c.Exclude = p.strs(raw, "", "exclude", nil)
	for _, k := range []string{"include", "exclude"} {
		list := c.Include
		if k == "exclude" {
			list = c.Exclude
		}
		for _, pat := range list {
			if err := checkPattern(pat); err != nil {
				p.add(k, fmt.Sprintf("bad pattern %q: %v", pat, err), `use shell globs like "*.JPG" or "DCIM/*/*.ARW"`)
			}
		}
	}
	c.RawJPEG = p.enum(raw, "", "raw_jpeg", "both", "both", "jpeg", "raw", rawJPEGFirst)
	c.Settle = p.dur(raw, "", "settle", time.Second, 50*time.Millisecond, time.Minute)
	c.Backlog = p.enum(raw, "", "backlog", "new", "new", "all")
	c.OnlyProtected = p.boolean(raw, "", "only_protected", false)
}

// running reads workers, hashing, logging, the status socket, failover and
// the retry backoff.
func (p *cfgParser) running(raw map[string]any, c *Config) {
	c.Workers = p.integer(raw, "", "workers", 2, 1, 16)
	c.RecordSHA256 = p.boolean(raw, "", "record_sha256", false)
	c.LogFormat = p.enum(raw, "", "log_format", "text", "text", "json")
	switch p.enum(raw, "", "log_level", "info", "debug", "info", "warn", "error") {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		c.LogLevel = slog.LevelInfo
	}
	c.StatusSocket = p.str(raw, "", "status_socket", "/run/camftpd.sock")
	if !filepath.IsAbs(c.StatusSocket) {
		p.add("status_socket", fmt.Sprintf("%q is not an absolute path", c.StatusSocket), `e.g. status_socket = "/run/camftpd.sock"`)
	} else if len(c.StatusSocket) > 107 {
		p.add("status_socket", "path longer than 107 bytes (Unix socket limit)", "choose a shorter path")
	}
	c.Failover = p.boolean(raw, "", "failover", false)
	c.FailoverAfter = p.integer(raw, "", "failover_after", 3, 1, 1000)
	c.FailbackAfter = p.dur(raw, "", "failback_after", 5*time.Minute, time.Second, 24*time.Hour)
	c.RetryMin = p.dur(raw, "", "retry_min", 2*time.Second, 100*time.Millisecond, time.Hour)
	c.RetryMax = p.dur(raw, "", "retry_max", 5*time.Minute, 100*time.Millisecond, 24*time.Hour)
	if c.RetryMax < c.RetryMin {
		p.add("retry_max", "shorter than retry_min", "make retry_max at least retry_min")
	}
	c.CertWarnDays = p.integer(raw, "", "cert_warn_days", tlspolicy.DefaultCertWarnDays, 0, 3650)
}

// servers reads the [[server]] tables and the active slot.
func (p *cfgParser) servers(raw map[string]any, c *Config) {
	servers := p.tables(raw, "server")
	if len(servers) == 0 && raw["server"] == nil {
		p.add("server", "no [[server]] configured", "add a [[server]] table with name, host and user (see camftpd.example.toml)")
	}
	names := map[string]bool{}
	for i, t := range servers {
		s := p.server(i, t)
		if s.Name != "" {
			if names[s.Name] {
				p.add(fmt.Sprintf("server[%d].name", i), fmt.Sprintf("duplicate server name %q", s.Name), "give each [[server]] its own name")
			}
			names[s.Name] = true
		}
		c.Servers = append(c.Servers, s)
	}
	c.Active = p.str(raw, "", "active", "")
	if c.Active == "" && len(c.Servers) > 0 {
		c.Active = c.Servers[0].Name
	} else if c.Active != "" && len(c.Servers) > 0 && !names[c.Active] {
		known := make([]string, 0, len(names))
		for n := range names {
			known = append(known, strconv.Quote(n))
		}
		sort.Strings(known)
		p.add("active", fmt.Sprintf("no [[server]] named %q", c.Active), "set active to one of "+strings.Join(known, ", "))
	}
}

func (p *cfgParser) server(i int, t map[string]any) Server {
	pre := fmt.Sprintf("server[%d]", i)
	k := func(s string) string { return pre + "." + s }
	p.unknown(pre, t, serverKeys)
	s := Server{}
	s.Name = p.str(t, pre, "name", "")
	if s.Name == "" {
		s.Name = fmt.Sprintf("server%d", i+1)
	}
	s.Host = p.str(t, pre, "host", "")
	if s.Host == "" {
		p.add(pre, "host is missing", `add host = "ftp.example.com" to this [[server]]`)
	} else if strings.ContainsAny(s.Host, " /:") && !strings.HasPrefix(s.Host, "[") {
		p.add(k("host"), fmt.Sprintf("%q is not a host name or address", s.Host), "give only the host (the port goes in port)")
	}
	s.Port = p.integer(t, pre, "port", 21, 1, 65535)
	s.User = p.str(t, pre, "user", "")
	if s.User == "" {
		p.add(pre, "user is missing", `add user = "name" (use "anonymous" for anonymous FTP)`)
	}
	pw := p.str(t, pre, "password", "")
	s.PasswordFile = p.str(t, pre, "password_file", "")
	switch {
	case pw != "" && s.PasswordFile != "":
		p.add(k("password_file"), "both password and password_file are set", "keep only one of them")
	case s.PasswordFile != "":
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			p.add(k("password_file"), "cannot read "+s.PasswordFile+": "+unwrapPathErr(err), "create the file (mode 0600) holding the password")
		} else if mode, open := openToOthers(s.PasswordFile); open {
			p.add(k("password_file"), fmt.Sprintf("%s can be read by group or others (mode %04o): the password is not private", s.PasswordFile, mode),
				"chmod 600 "+s.PasswordFile)
		} else {
			pw = strings.TrimRight(string(b), "\r\n")
		}
	}
	s.Password = Secret(pw)
	s.RemoteTemplate = p.str(t, pre, "remote_template", "{dir}/{name}")
	if _, err := transfer.RenderRemote(s.RemoteTemplate, "DCIM/100TEST/DSC00001.JPG", time.Now()); err != nil {
		p.add(k("remote_template"), err.Error(), "use the placeholders {date} {yyyy} {mm} {dd} {dir} {name} {base} {ext}")
	}
	s.SameName = transfer.SameName(p.enum(t, pre, "same_name", "rename", "overwrite", "skip", "rename"))
	p.connOptions(pre, t, &s)
	s.TLSMode = tlspolicy.Mode(p.enum(t, pre, "tls_mode", "compatible", "compatible", "recommended"))
	s.MaxTLS12 = p.boolean(t, pre, "max_tls12", false)
	s.CAFiles = p.strs(t, pre, "ca_files", nil)
	if len(s.CAFiles) > 0 {
		pem, err := tlspolicy.LoadCAFiles(s.CAFiles...)
		if err != nil {
			p.add(k("ca_files"), err.Error(), "list readable PEM files holding the server's CA certificate")
		}
		s.CAPEM = pem
	}
	s.Pins = p.strs(t, pre, "pins", nil)
	for _, pin := range s.Pins {
		if _, err := tlspolicy.ParsePin(pin); err != nil {
			p.add(k("pins"), err.Error(), `write pins as "sha256/<base64 of the SHA-256 of the certificate or SPKI>"`)
		}
	}
	s.BandwidthLimit = p.rate(t, pre, "bandwidth_limit")
	s.Timeout = p.dur(t, pre, "timeout", 30*time.Second, time.Second, 10*time.Minute)
	s.ConnectTimeout = p.dur(t, pre, "connect_timeout", 15*time.Second, time.Second, 10*time.Minute)
	return s
}

func join(pre, key string) string {
	if pre == "" {
		return key
	}
	return pre + "." + key
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case time.Time:
		return "a date/time"
	}
	return fmt.Sprintf("%T", v)
}

func (p *cfgParser) unknown(pre string, m map[string]any, known []string) {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		found := false
		for _, k := range known {
			if k == key {
				found = true
				break
			}
		}
		if found {
			continue
		}
		fix := "remove it"
		if s := closest(key, known); s != "" {
			fix = fmt.Sprintf("did you mean %q?", s)
		}
		where := "at the top level"
		if pre != "" {
			where = "in [[server]]"
		}
		p.add(join(pre, key), "unknown key "+where, fix)
	}
}

func closest(key string, known []string) string {
	best, bd := "", 4
	for _, k := range known {
		if d := editDistance(key, k); d < bd {
			best, bd = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (p *cfgParser) str(m map[string]any, pre, key, def string) string {
	v, ok := m[key]
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		p.add(join(pre, key), "must be a string, not "+typeName(v), fmt.Sprintf(`put the value in quotes: %s = "..."`, key))
		return def
	}
	return s
}

func (p *cfgParser) strs(m map[string]any, pre, key string, def []string) []string {
	v, ok := m[key]
	if !ok {
		return def
	}
	arr, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr {
			p.add(join(pre, key), "must be an array of strings, not a string", fmt.Sprintf(`write %s = [%q]`, key, s))
		} else {
			p.add(join(pre, key), "must be an array of strings, not "+typeName(v), fmt.Sprintf(`write %s = ["..."]`, key))
		}
		return def
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			p.add(join(pre, key), "every element must be a string, found "+typeName(e), "quote every element")
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *cfgParser) enum(m map[string]any, pre, key, def string, allowed ...string) string {
	s := p.str(m, pre, key, def)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	p.add(join(pre, key), fmt.Sprintf("%q is not allowed", s), "use one of "+quoteAll(allowed))
	return def
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (p *cfgParser) integer(m map[string]any, pre, key string, def, lo, hi int) int {
	v, ok := m[key]
	if !ok {
		return def
	}
	n, ok := v.(int64)
	if !ok {
		p.add(join(pre, key), "must be an integer, not "+typeName(v), fmt.Sprintf("write %s = %d (no quotes)", key, def))
		return def
	}
	if n < int64(lo) || n > int64(hi) {
		p.add(join(pre, key), fmt.Sprintf("%d is out of range", n), fmt.Sprintf("use a value from %d to %d", lo, hi))
		return def
	}
	return int(n)
}

func (p *cfgParser) boolean(m map[string]any, pre, key string, def bool) bool {
	v, ok := m[key]
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		p.add(join(pre, key), "must be true or false, not "+typeName(v), fmt.Sprintf("write %s = %v (no quotes)", key, def))
		return def
	}
	return b
}

func (p *cfgParser) dur(m map[string]any, pre, key string, def, lo, hi time.Duration) time.Duration {
	v, ok := m[key]
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		p.add(join(pre, key), "must be a duration string, not "+typeName(v), fmt.Sprintf(`write %s = "%s"`, key, def))
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.add(join(pre, key), fmt.Sprintf("%q is not a duration", s), `use a number and a unit, e.g. "500ms", "2s", "1m"`)
		return def
	}
	if d < lo || d > hi {
		p.add(join(pre, key), fmt.Sprintf("%s is out of range", d), fmt.Sprintf("use a value from %s to %s", lo, hi))
		return def
	}
	return d
}

// rate reads bytes per second: an integer, or a string like "2MB/s", "500KiB", "20Mbit/s".
func (p *cfgParser) rate(m map[string]any, pre, key string) int64 {
	v, ok := m[key]
	if !ok {
		return 0
	}
	fix := `give bytes per second as an integer, or a string like "2MB/s", "512KiB/s", "20Mbit/s" (0 = no limit)`
	switch x := v.(type) {
	case int64:
		if x < 0 {
			p.add(join(pre, key), "must not be negative", fix)
			return 0
		}
		return x
	case string:
		n, err := parseRate(x)
		if err != nil {
			p.add(join(pre, key), err.Error(), fix)
			return 0
		}
		return n
	}
	p.add(join(pre, key), "must be an integer or a string, not "+typeName(v), fix)
	return 0
}

func parseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(t, "/s")
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a rate", s)
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
		"kbit": 1e3 / 8, "Kbit": 1e3 / 8, "Mbit": 1e6 / 8, "Gbit": 1e9 / 8}
	mu, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q", s, unit)
	}
	return int64(f * mu), nil
}

func (p *cfgParser) tables(m map[string]any, key string) []map[string]any {
	v, ok := m[key]
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case []map[string]any:
		return x
	case map[string]any:
		p.add(key, "must be written [[server]] (an array of tables), not [server]", "write the header as [[server]]")
		return []map[string]any{x}
	}
	p.add(key, "must be [[server]] tables, not "+typeName(v), "write each server as a [[server]] table")
	return nil
}
