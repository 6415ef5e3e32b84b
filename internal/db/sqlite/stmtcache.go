package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// maxCachedStatements bounds the prepared statements each connection keeps.
// The store issues well under a hundred distinct queries; queries built at
// run time (IN lists of varying length) could exceed it, and then the cache
// starts over.
const maxCachedStatements = 256

// sqliteConn is what the driver's connections implement.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// sqliteStmt is what the driver's statements implement.
type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// stmtCachingConnector makes each connection keep the statements it
// prepared for queries with arguments, so that a query is parsed and
// planned once per connection instead of once per call.
type stmtCachingConnector struct {
	driver.Connector
}

// Connect implements driver.Connector.
func (c stmtCachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close() // report the original problem
		return nil, fmt.Errorf("sqlite: the driver's connection %T lacks methods the statement cache needs", conn)
	}
	return &cachingConn{sqliteConn: sc, stmts: make(map[string]*cachedStmt)}, nil
}

// cachingConn is a connection with its prepared statements. Like every
// driver.Conn, it is used by one goroutine at a time.
type cachingConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

// cachedStmt is a prepared statement; busy while rows of it are open.
// evicted means it left the cache while busy: its rows close it.
type cachedStmt struct {
	stmt    sqliteStmt
	busy    bool
	evicted bool
}

// statement returns the prepared statement of query, or nil if the query
// must run unprepared (it has no arguments, such as a migration script, or
// its statement is busy with open rows).
func (c *cachingConn) statement(ctx context.Context, query string, args []driver.NamedValue) (*cachedStmt, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if len(c.stmts) >= maxCachedStatements {
		if err := c.closeStatements(); err != nil {
			return nil, err
		}
	}
	st, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	ss, ok := st.(sqliteStmt)
	if !ok {
		_ = st.Close() // not cacheable; let the connection run the query itself
		return nil, nil
	}
	s := &cachedStmt{stmt: ss}
	c.stmts[query] = s
	return s, nil
}

// ExecContext implements driver.ExecerContext.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.statement(ctx, query, args)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return s.stmt.ExecContext(ctx, args)
}

// QueryContext implements driver.QueryerContext.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.statement(ctx, query, args)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, stmt: s}, nil
}

// Close implements driver.Conn: it closes the statements, then the
// connection.
func (c *cachingConn) Close() error {
	return errors.Join(c.closeStatements(), c.sqliteConn.Close())
}

func (c *cachingConn) closeStatements() error {
	var errs []error
	for q, s := range c.stmts {
		if s.busy {
			s.evicted = true
		} else {
			errs = append(errs, s.stmt.Close())
		}
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}

// cachedRows frees its statement for the next query when closed.
type cachedRows struct {
	driver.Rows
	stmt *cachedStmt
}

// Close implements driver.Rows.
func (r *cachedRows) Close() error {
	r.stmt.busy = false
	err := r.Rows.Close()
	if r.stmt.evicted {
		err = errors.Join(err, r.stmt.stmt.Close())
	}
	return err
}
