package postgres

import (
	"context"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/storage/storagetest"
)

// DeleteTenant leaves no row of the server in any table that holds a
// tenant's data, and leaves the other tenant's rows.
func TestDeleteTenantLeavesNoRows(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	gone, kept := storagetest.ServerID("gone"), storagetest.ServerID("kept")
	for _, server := range []policy.ID{gone, kept} {
		if err := s.PutTenant(ctx, server, storage.Quota{}); err != nil {
			t.Fatal(err)
		}
		storagetest.Populate(t, s, server)
	}
	count := func(table string, server policy.ID) int {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE server = $1`, server[:]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, table := range tenantData {
		if count(table, gone) == 0 {
			t.Fatalf("Populate stored nothing in %s: the test checks nothing there", table)
		}
	}
	if _, err := s.DeleteTenant(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for _, table := range tenantData {
		if n := count(table, gone); n != 0 {
			t.Errorf("%s holds %d rows of the deleted tenant", table, n)
		}
		if count(table, kept) == 0 {
			t.Errorf("%s lost the other tenant's rows", table)
		}
	}
}
