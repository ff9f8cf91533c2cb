package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver

	"github.com/petrel-dev/petrel/api/v1alpha1"
	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/engine/node"
)

// store is the engine's state in SQLite (WAL mode): jobs, attempts,
// metrics, volumes and services. It is written through on every change, so
// a restarted server reads back exactly what it knew.
type store struct {
	db *sql.DB
	// sealer, when set, seals secret env values in the records it writes
	// and opens them in the records it reads: state.db holds no secret in
	// clear text.
	sealer *node.Sealer
}

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
	name TEXT PRIMARY KEY,
	phase TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	record TEXT NOT NULL              -- JSON jobRecord: spec, conditions, times
);
CREATE TABLE IF NOT EXISTS attempts (
	job TEXT NOT NULL,
	idx INTEGER NOT NULL,
	phase TEXT NOT NULL,
	exit_code INTEGER,
	reason TEXT NOT NULL DEFAULT '',
	started_at INTEGER,
	finished_at INTEGER,
	record TEXT NOT NULL,             -- JSON backend.Attempt
	PRIMARY KEY (job, idx)
);
CREATE TABLE IF NOT EXISTS metrics (
	job TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	ts INTEGER NOT NULL,              -- unix nanoseconds
	name TEXT NOT NULL,
	value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_job ON metrics (job, attempt, ts);
CREATE TABLE IF NOT EXISTS volumes (
	name TEXT PRIMARY KEY,
	record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS services (
	name TEXT PRIMARY KEY,
	record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS service_status (
	name TEXT PRIMARY KEY,
	record TEXT NOT NULL              -- JSON serviceHistory: replicas (pods) and events
);
`

func openStore(path string) (*store, error) {
	// secure_delete: a deleted record's bytes are overwritten, not left in
	// free pages.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_pragma=secure_delete(ON)")
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise state database %s: %w", path, err)
	}
	// Owner only, as the directory: the database and its WAL files.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("restrict %s to its owner: %w", f, err)
		}
	}
	return &store{db: db}, nil
}

func (s *store) Close() error { return s.db.Close() }

func unixNano(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func (s *store) putJob(ctx context.Context, r *jobRecord) error {
	if s.sealer != nil {
		sealed := *r
		sealed.Spec.Env = s.sealer.SealEnv(r.Spec.Env)
		r = &sealed
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO jobs (name, phase, created_at, record) VALUES (?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET phase = excluded.phase, record = excluded.record`,
		r.Name, r.Phase, r.CreationTime.UnixNano(), string(b))
	return err
}

func (s *store) putAttempt(ctx context.Context, job string, a *backend.Attempt) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	var code any
	if a.ExitCode != nil {
		code = *a.ExitCode
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO attempts (job, idx, phase, exit_code, reason, started_at, finished_at, record)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(job, idx) DO UPDATE SET phase = excluded.phase, exit_code = excluded.exit_code,
		reason = excluded.reason, started_at = excluded.started_at, finished_at = excluded.finished_at, record = excluded.record`,
		job, a.Index, a.Phase, code, a.Reason, unixNano(a.StartTime), unixNano(a.EndTime), string(b))
	return err
}

// deleteAttempt removes the record of attempt idx of job.
func (s *store) deleteAttempt(ctx context.Context, job string, idx int) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM attempts WHERE job = ? AND idx = ?`, job, idx)
	return err
}

func (s *store) deleteJob(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM metrics WHERE job = ?`, `DELETE FROM attempts WHERE job = ?`, `DELETE FROM jobs WHERE name = ?`} {
		if _, err := tx.ExecContext(ctx, q, name); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// finishedPhases are the phases of jobs the controllers no longer act on
// (only the TTL-after-finished controller, from the record).
const finishedPhases = `('Complete', 'Failed')`

// jobFilter selects which jobs loadJobs reads.
type jobFilter int

const (
	allJobs jobFilter = iota
	activeJobs
	finishedJobs
)

func (f jobFilter) where() string {
	switch f {
	case activeJobs:
		return ` WHERE phase NOT IN ` + finishedPhases
	case finishedJobs:
		return ` WHERE phase IN ` + finishedPhases
	}
	return ""
}

// loadJobs reads the jobs f selects with their attempts, oldest first.
func (s *store) loadJobs(ctx context.Context, f jobFilter) ([]*jobRecord, error) {
	var out []*jobRecord
	byName := map[string]*jobRecord{}
	err := s.eachJob(ctx, f, func(r *jobRecord) error {
		out = append(out, r)
		byName[r.Name] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	q := `SELECT job, record FROM attempts ORDER BY job, idx`
	if f != allJobs {
		q = `SELECT job, record FROM attempts WHERE job IN (SELECT name FROM jobs` + f.where() + `) ORDER BY job, idx`
	}
	return out, s.eachAttempt(ctx, q, nil, func(job string, a backend.Attempt) {
		if r := byName[job]; r != nil {
			r.Attempts = append(r.Attempts, a)
		}
	})
}

// eachJob decodes the jobs f selects one at a time, oldest first, without
// their attempts, so a caller that keeps none holds one in memory at a time.
func (s *store) eachJob(ctx context.Context, f jobFilter, each func(*jobRecord) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT record FROM jobs`+f.where()+` ORDER BY created_at, name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return err
		}
		r := &jobRecord{}
		if err := json.Unmarshal([]byte(b), r); err != nil {
			return fmt.Errorf("decode job record: %w", err)
		}
		if err := s.open(r.Spec.Env); err != nil {
			return fmt.Errorf("job %s: %w", r.Name, err)
		}
		r.Attempts = nil
		if err := each(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *store) eachAttempt(ctx context.Context, q string, args []any, each func(job string, a backend.Attempt)) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var job, b string
		if err := rows.Scan(&job, &b); err != nil {
			return err
		}
		var a backend.Attempt
		if err := json.Unmarshal([]byte(b), &a); err != nil {
			return fmt.Errorf("decode attempt record: %w", err)
		}
		each(job, a)
	}
	return rows.Err()
}

// finishedWithTTL lists the finished jobs that have a
// ttlSecondsAfterFinished, without decoding their records.
func (s *store) finishedWithTTL(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM jobs WHERE phase IN `+finishedPhases+
		` AND json_extract(record, '$.spec.ttlSecondsAfterFinished') IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// open opens the sealed secret values of env in place.
func (s *store) open(env []v1alpha1.EnvVar) error {
	if s.sealer == nil {
		return nil
	}
	return s.sealer.OpenEnv(env)
}

// getJob reads one job with its attempts; ok is false when there is none.
func (s *store) getJob(ctx context.Context, name string) (*jobRecord, bool, error) {
	var b string
	err := s.db.QueryRowContext(ctx, `SELECT record FROM jobs WHERE name = ?`, name).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r := &jobRecord{}
	if err := json.Unmarshal([]byte(b), r); err != nil {
		return nil, false, fmt.Errorf("decode job record: %w", err)
	}
	if err := s.open(r.Spec.Env); err != nil {
		return nil, false, fmt.Errorf("job %s: %w", name, err)
	}
	r.Attempts = nil
	err = s.eachAttempt(ctx, `SELECT job, record FROM attempts WHERE job = ? ORDER BY idx`, []any{name}, func(_ string, a backend.Attempt) {
		r.Attempts = append(r.Attempts, a)
	})
	return r, err == nil, err
}

func (s *store) addMetrics(ctx context.Context, job string, pts []backend.MetricPoint) error {
	if len(pts) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO metrics (job, attempt, ts, name, value) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, p := range pts {
		if _, err := stmt.ExecContext(ctx, job, p.Attempt, p.Time.UnixNano(), p.Name, p.Value); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *store) metrics(ctx context.Context, job string) ([]backend.MetricPoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT attempt, ts, name, value FROM metrics WHERE job = ? ORDER BY rowid`, job)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []backend.MetricPoint
	for rows.Next() {
		var p backend.MetricPoint
		var ts int64
		if err := rows.Scan(&p.Attempt, &ts, &p.Name, &p.Value); err != nil {
			return nil, err
		}
		p.Time = time.Unix(0, ts)
		out = append(out, p)
	}
	return out, rows.Err()
}

// putRecord and loadRecords store JSON documents in the volumes and
// services tables.
func (s *store) putRecord(ctx context.Context, table, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO `+table+` (name, record) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET record = excluded.record`, name, string(b))
	return err
}

func (s *store) deleteRecord(ctx context.Context, table, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM `+table+` WHERE name = ?`, name)
	return err
}

func (s *store) loadRecords(ctx context.Context, table string, each func(b []byte) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT record FROM `+table+` ORDER BY name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := each([]byte(b)); err != nil {
			return err
		}
	}
	return rows.Err()
}
