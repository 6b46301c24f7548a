package events

import (
	"path/filepath"
	"testing"
)

func TestLogAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Logger(Operational, nil).Info("package added", "package", "Hello", "uid", 1000)
	l.Logger(VirtualApplication, nil).Info("launched", "app", "hello", "uid", 1001)
	l.Logger(Admin, nil).Warn("config changed", "key", "AutoLoad")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	all, err := Read(path, Filter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("read %d records, err %v", len(all), err)
	}
	ops, _ := Read(path, Filter{Channel: Operational})
	if len(ops) != 1 || ops[0].Message != "package added" || ops[0].Attrs["package"] != "Hello" {
		t.Fatalf("operational: %+v", ops)
	}
	uid := 1001
	mine, _ := Read(path, Filter{UID: &uid})
	if len(mine) != 1 || mine[0].Channel != VirtualApplication {
		t.Fatalf("uid filter: %+v", mine)
	}
}
