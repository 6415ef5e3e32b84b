package sqlcore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"keppel/internal/db"
	"keppel/internal/models"
)

// Limits of ListAuditEvents.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

const auditColumns = `id, time, actor, remote_addr, action, auth_tenant_id, account_name, target,
	outcome, reason, details_json`

// RecordAuditEvents implements db.TenancyStore. The IDs are assigned by the
// database (e.ID is ignored); a zero Time means now.
func (s *Store) RecordAuditEvents(ctx context.Context, events ...models.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error { return s.insertAuditEvents(ctx, tx, events) })
	if err != nil {
		return fmt.Errorf("record %d audit event(s): %w", len(events), err)
	}
	return nil
}

// insertAuditEvents inserts events in a transaction; a zero Time means now.
func (s *Store) insertAuditEvents(ctx context.Context, tx *sql.Tx, events []models.AuditEvent) error {
	for _, e := range events {
		at := e.Time
		if at.IsZero() {
			at = s.now()
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (time, actor, remote_addr, action,
			auth_tenant_id, account_name, target, outcome, reason, details_json)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			toUnix(at), e.Actor, e.RemoteAddr, e.Action, e.AuthTenantID, e.AccountName, e.Target,
			e.Outcome, e.Reason, e.DetailsJSON)
		if err != nil {
			return fmt.Errorf("insert audit event %q: %w", e.Action, s.mapErr(err, stmtWrite))
		}
	}
	return nil
}

// ListAuditEvents implements db.TenancyStore. The filter's conditions are
// AND-ed; Since is inclusive and Until exclusive, both at the precision of
// whole seconds. At most f.Limit events are returned: 100 if f.Limit <= 0,
// never more than 1000.
func (s *Store) ListAuditEvents(ctx context.Context, f db.AuditFilter) ([]models.AuditEvent, error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	for _, c := range []struct{ column, value string }{
		{"actor", f.Actor}, {"action", f.Action}, {"auth_tenant_id", f.AuthTenantID}, {"account_name", f.AccountName},
	} {
		if c.value != "" {
			add(c.column+" = $%d", c.value)
		}
	}
	if !f.Since.IsZero() {
		add("time >= $%d", toUnix(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < $%d", toUnix(f.Until))
	}
	if f.BeforeID > 0 {
		add("id < $%d", f.BeforeID)
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = defaultAuditLimit
	case limit > maxAuditLimit:
		limit = maxAuditLimit
	}
	query := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, " AND ")
	}
	query += ` ORDER BY id DESC` + limitClause(limit)

	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	out := []models.AuditEvent{}
	for rows.Next() {
		var (
			e  models.AuditEvent
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.RemoteAddr, &e.Action, &e.AuthTenantID, &e.AccountName,
			&e.Target, &e.Outcome, &e.Reason, &e.DetailsJSON); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		e.Time = fromUnix(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}
