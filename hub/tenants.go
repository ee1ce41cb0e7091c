package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// The operator's side of tenancy: which servers this hub hosts, their
// quotas, suspension and usage. Callers (the admin API) authenticate the
// operator; the service does not.

// Tenants returns every tenant, ordered by server ID, with the time of the
// reading (Unix ms) that their usage is as of.
func (s *Service) Tenants(ctx context.Context) (ts []storage.Tenant, at int64, err error) {
	ts, err = s.cfg.Store.Tenants(ctx)
	return ts, s.now(), err
}

// Tenant returns one tenant, or storage.ErrNotFound.
func (s *Service) Tenant(ctx context.Context, server policy.ID) (storage.Tenant, error) {
	return s.cfg.Store.Tenant(ctx, server)
}

// PutTenant provisions server with a quota, or replaces the quota of an
// existing tenant (usage is kept; a quota below usage blocks new writes),
// and sets its customer label unless label is nil. A provisioned server is
// hosted once its genesis arrives, whatever the admission mode; this is
// also how the operator brings back a server deleted earlier (DeleteTenant).
func (s *Service) PutTenant(ctx context.Context, server policy.ID, q storage.Quota, label *string) error {
	if server.IsZero() {
		return fmt.Errorf("%w: server is required", ErrBadRequest)
	}
	return s.cfg.Store.ProvisionTenant(ctx, server, q, label)
}

// Suspend suspends (true) or resumes (false) a tenant's writes; reads
// continue.
func (s *Service) Suspend(ctx context.Context, server policy.ID, suspended bool) error {
	return s.cfg.Store.SetSuspended(ctx, server, suspended)
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error {
	if _, err := s.cfg.Store.Tenant(ctx, policy.ID{}); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}
