package migration

import (
	"testing"
	"testing/fstest"
)

func TestList(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_more.sql": {Data: []byte("B")},
		"m/0001_init.sql": {Data: []byte("A")},
		"m/0010_late.sql": {Data: []byte("C")},
		"m/README":        {Data: []byte("not a migration")},
	}
	all, err := List(fsys, "m", 0)
	if err != nil || len(all) != 3 || all[0].SQL != "A" || all[1].Version != 2 || all[2].Version != 10 {
		t.Fatalf("List = %+v, %v", all, err)
	}
	rest, err := List(fsys, "m", 2)
	if err != nil || len(rest) != 1 || rest[0].Name != "0010_late.sql" {
		t.Fatalf("after version 2: %+v, %v", rest, err)
	}
	for name, bad := range map[string]fstest.MapFS{
		"no number":      {"m/init.sql": {}},
		"zero":           {"m/0000_x.sql": {}},
		"shared version": {"m/0001_a.sql": {}, "m/01_b.sql": {}},
	} {
		if _, err := List(bad, "m", 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
