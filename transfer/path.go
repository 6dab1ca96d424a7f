package transfer

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CheckPath refuses a remote path that could inject FTP commands or escape
// the login directory: CR, LF, NUL and every other control character
// (C0, DEL, C1), invalid UTF-8, an empty path or component name "..".
// Upload calls it before any command is sent.
func CheckPath(p string) error {
	if p == "" {
		return errors.New("remote path is empty: set a remote path template")
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("remote path %q is not valid UTF-8: rename the file or change the remote path template", p)
	}
	for i, r := range p {
		if unicode.IsControl(r) {
			what := fmt.Sprintf("control character %U", r)
			switch r {
			case '\r':
				what = "a carriage return (CR)"
			case '\n':
				what = "a line feed (LF)"
			case 0:
				what = "a NUL byte"
			}
			return fmt.Errorf("remote path %q has %s at byte %d: refused, it could inject FTP commands; rename the file", p, what, i)
		}
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return fmt.Errorf("remote path %q contains \"..\": refused; change the remote path template", p)
		}
	}
	return nil
}

// RenderRemote renders a remote path template for the capture at rel (its
// path relative to the media directory, either separator) taken at t.
//
//	{date} t as YYYY-MM-DD   {yyyy} {mm} {dd} year, month, day of t
//	{dir}  directory of rel ("" at the top)   {name} file name with extension
//	{base} file name without extension        {ext}  extension without the dot
//
// Empty components are dropped ("{dir}/{name}" with rel "a.jpg" is "a.jpg"),
// a leading "/" is kept. Unknown placeholders and unbalanced braces are
// errors, and so is a result that CheckPath refuses or that ends in a
// directory.
func RenderRemote(template string, rel string, t time.Time) (string, error) {
	if template == "" {
		template = "{name}"
	}
	rel = filepath.ToSlash(rel) // rel uses the OS separator
	rel = strings.TrimLeft(path.Clean("/"+rel), "/")
	if rel == "" || rel == "." {
		return "", errors.New("capture path is empty")
	}
	dir, name := path.Split(rel)
	dir = strings.Trim(dir, "/")
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if base == "" { // ".hidden": no extension
		base, ext = name, ""
	}
	vals := map[string]string{
		"date": t.Format("2006-01-02"),
		"yyyy": t.Format("2006"),
		"mm":   t.Format("01"),
		"dd":   t.Format("02"),
		"dir":  dir,
		"name": name,
		"base": base,
		"ext":  strings.TrimPrefix(ext, "."),
	}
	var b strings.Builder
	for s := template; s != ""; {
		i := strings.IndexAny(s, "{}")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if s[i] == '}' {
			return "", fmt.Errorf("remote path template %q: unbalanced '}'", template)
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("remote path template %q: unclosed '{'", template)
		}
		key := s[i+1 : i+j]
		v, ok := vals[key]
		if !ok {
			return "", fmt.Errorf("remote path template %q: unknown placeholder {%s} (use {date} {yyyy} {mm} {dd} {dir} {name} {base} {ext})", template, key)
		}
		b.WriteString(v)
		s = s[i+j+1:]
	}
	out := b.String()
	abs := strings.HasPrefix(template, "/")
	var parts []string
	for _, c := range strings.Split(out, "/") {
		if c == "" || c == "." {
			continue
		}
		parts = append(parts, c)
	}
	if len(parts) == 0 || strings.HasSuffix(out, "/") {
		return "", fmt.Errorf("remote path template %q gives %q for %q: it must end in a file name, e.g. {name}", template, out, rel)
	}
	out = strings.Join(parts, "/")
	if abs {
		out = "/" + out
	}
	if err := CheckPath(out); err != nil {
		return "", err
	}
	return out, nil
}

// TempPaths returns the temporary remote files an upload of remote with
// tempID (Job.TempID) writes to: ".camftpd-<id>.part" in remote's
// directory, or "camftpd-<id>.part" on a server that refuses names
// starting with a dot. RemoveTemps deletes them.
func TempPaths(remote, tempID string) []string {
	dir, _ := path.Split(remote)
	return tempNames(dir, sanitizeID(tempID))
}

// The temporary names of an upload: tempPrefix + id + tempSuffix, or with
// plainPrefix when the server refuses names starting with a dot.
const (
	tempPrefix  = ".camftpd-"
	plainPrefix = "camftpd-"
	tempSuffix  = ".part"
)

// tempNames returns the temporary names in dir for a sanitized id: the
// hidden one first, then the visible one.
func tempNames(dir, id string) []string {
	return []string{dir + tempPrefix + id + tempSuffix, dir + plainPrefix + id + tempSuffix}
}

// sanitizeID maps id to the characters a temporary name may hold (ASCII
// letters, digits, '-' and '_'; '_' for any other), at most 64 of them.
func sanitizeID(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	return b.String()
}

// isTempName reports whether p names a temporary file of an upload.
func isTempName(p string) bool {
	name, ok := strings.CutSuffix(path.Base(p), tempSuffix)
	if !ok {
		return false
	}
	id, ok := strings.CutPrefix(name, tempPrefix)
	if !ok {
		id, ok = strings.CutPrefix(name, plainPrefix)
	}
	return ok && id != "" && sanitizeID(id) == id
}
