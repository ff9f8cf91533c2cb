package logtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A log written in three parts: each line gets the time of the write
// that completed it, and --since keeps only the recent ones.
func TestFilterStampsEachLineWithItsWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output.log")
	log, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ix, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	t1, t2, t3 := now.Add(-time.Hour), now.Add(-time.Minute), now.Add(-time.Second)
	for _, w := range []struct {
		b  string
		at time.Time
	}{{"one\ntw", t1}, {"o\n", t2}, {"three\n", t3}} {
		if _, err := log.WriteString(w.b); err != nil {
			t.Fatal(err)
		}
		ix.Mark(log, w.at)
	}
	ix.Close()

	var out bytes.Buffer
	f := NewFilter(path, true, 0, "[attempt 0] ")
	for _, l := range []string{"one\n", "two\n", "three\n"} {
		if _, err := f.Write(&out, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	want := "[attempt 0] " + Stamp(t1) + "one\n" + "[attempt 0] " + Stamp(t2) + "two\n" + "[attempt 0] " + Stamp(t3) + "three\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}

	out.Reset()
	f = NewFilter(path, false, 120, "")
	for _, l := range []string{"one\n", "two\n", "three\n"} {
		if _, err := f.Write(&out, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "two\nthree\n" {
		t.Fatalf("--since 120s printed %q, want the lines of the last two minutes", out.String())
	}
}

// A log without an index (written before petrel kept one) is stamped
// with the log's modification time rather than refused.
func TestLogWithoutIndexUsesItsModificationTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := NewFilter(path, true, 0, "").Write(&out, []byte("old\n")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "2026-01-02T03:04:05Z old") {
		t.Fatalf("got %q", out.String())
	}
}
