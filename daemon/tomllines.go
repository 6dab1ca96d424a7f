package daemon

import (
	"fmt"
	"strings"
)

// keyLines maps a key path to the line (1-based) where it is written:
// "media_dir", "server[0]" (the [[server]] header), "server[0].host".
//
// BurntSushi/toml reports a line for syntax errors but keeps key positions
// private (and merges the keys of every [[server]] table), so this small
// scanner finds them. It only has to understand what a valid file looks like:
// the file has already been parsed by the real decoder when it runs.
type keyLines map[string]int

func (k keyLines) line(path string) int {
	for path != "" {
		if l, ok := k[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func locateKeys(src string) keyLines {
	kl := keyLines{}
	counts := map[string]int{}
	prefix := ""
	var ml string // open multi-line string delimiter
	depth := 0    // open [ or { of a value spanning lines
	for i, raw := range strings.Split(src, "\n") {
		lineNo := i + 1
		line := raw
		if ml != "" {
			j := strings.Index(line, ml)
			if j < 0 {
				continue
			}
			line = line[j+3:]
			ml, depth = scanValue(line, depth)
			continue
		}
		if depth > 0 {
			ml, depth = scanValue(line, depth)
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if strings.HasPrefix(t, "[[") {
			end := strings.Index(t, "]]")
			if end < 0 {
				continue
			}
			name := normKey(t[2:end])
			idx := counts[name]
			counts[name] = idx + 1
			prefix = fmt.Sprintf("%s[%d]", name, idx)
			kl[prefix] = lineNo
			continue
		}
		if t[0] == '[' {
			end := strings.Index(t, "]")
			if end < 0 {
				continue
			}
			prefix = normKey(t[1:end])
			kl[prefix] = lineNo
			continue
		}
		eq := keyEnd(t)
		if eq < 0 {
			continue
		}
		key := normKey(t[:eq])
		full := key
		if prefix != "" {
			full = prefix + "." + key
		}
		if _, dup := kl[full]; !dup {
			kl[full] = lineNo
		}
		ml, depth = scanValue(t[eq+1:], 0)
	}
	return kl
}

// keyEnd returns the index of the '=' that ends the key, skipping quoted keys.
func keyEnd(s string) int {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '=':
			return i
		}
	}
	return -1
}

// normKey turns `a . "b"` into "a.b".
func normKey(s string) string {
	var parts []string
	var b strings.Builder
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			q = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(b.String()))
			b.Reset()
		case c == ' ' || c == '\t':
		default:
			b.WriteByte(c)
		}
	}
	parts = append(parts, strings.TrimSpace(b.String()))
	return strings.Join(parts, ".")
}

// scanValue walks a value's text and returns an unclosed multi-line string
// delimiter and the bracket depth left open at the end of the line.
func scanValue(s string, depth int) (string, int) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '#':
			return "", depth
		case '[', '{':
			depth++
		case ']', '}':
			if depth > 0 {
				depth--
			}
		case '"', '\'':
			delim := string([]byte{c, c, c})
			if strings.HasPrefix(s[i:], delim) {
				j := strings.Index(s[i+3:], delim)
				if j < 0 {
					return delim, depth
				}
				i += 3 + j + 2
				continue
			}
			for i++; i < len(s) && s[i] != c; i++ {
				if c == '"' && s[i] == '\\' {
					i++
				}
			}
		}
	}
	return "", depth
}
