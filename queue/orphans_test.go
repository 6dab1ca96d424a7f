package queue

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestOrphans: orphans are kept per server across a reopen (Open's checks
// and Verify accept their bucket), listed by server, and forgotten.
func TestOrphans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := Open(path, &Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := q.Orphans("a", 10); err != nil || len(o) != 0 {
		t.Fatalf("before any: %v %v", o, err)
	}
	add := []Orphan{{"a", "d/.camftpd-1.part"}, {"a", "d/camftpd-1.part"}, {"b", "d/.camftpd-1.part"}}
	if err := q.AddOrphans(add); err != nil {
		t.Fatal(err)
	}
	if err := q.AddOrphans(add[:1]); err != nil { // known already
		t.Fatal(err)
	}
	q.Close()
	q, err = Open(path, &Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Verify(); err != nil {
		t.Fatal(err)
	}
	a, _ := q.Orphans("a", 10)
	b, _ := q.Orphans("b", 10)
	if fmt.Sprint(a) != "[d/.camftpd-1.part d/camftpd-1.part]" || fmt.Sprint(b) != "[d/.camftpd-1.part]" {
		t.Fatalf("after reopen: a %q, b %q", a, b)
	}
	if one, _ := q.Orphans("a", 1); len(one) != 1 {
		t.Fatalf("limit 1: %q", one)
	}
	if err := q.ForgetOrphans("a", a[:1]); err != nil {
		t.Fatal(err)
	}
	if a, _ := q.Orphans("a", 10); fmt.Sprint(a) != "[d/camftpd-1.part]" {
		t.Fatalf("after forgetting one: %q", a)
	}
	if b, _ := q.Orphans("b", 10); len(b) != 1 {
		t.Fatalf("server b lost its orphan: %q", b)
	}
}
