package datadir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"easymail/internal/queue"
	"easymail/internal/store"
)

// NodeIDFile is the name of the file in the data directory that holds the node id its queue belongs to.
const NodeIDFile = "node-id"

// ErrNodeIDChanged is wrapped by the error of CheckNodeID when the configured node id is not the data
// directory's.
var ErrNodeIDChanged = errors.New("node_id does not match the data directory")

// CheckNodeID makes sure that the data directory dir, whose database is db, belongs to node id: the queue
// rows of a node (messages.node_id) are the ones whose content is in its spool, so a node started under
// another id would not see its queue. At the first start it writes id to <dir>/node-id; later it refuses
// (ErrNodeIDChanged) an id that is not the one written there. A data directory from before the file existed
// is checked against its database: one that still holds waiting mail (queued, deferred, held, quarantined)
// of another node id only is refused too.
func CheckNodeID(ctx context.Context, dir string, db *store.DB, id string) error {
	if strings.TrimSpace(id) == "" {
		return errors.New("node_id is empty: set node_id (or hostname, from which it is derived)")
	}
	have, err := readNodeID(dir)
	if err != nil {
		return err
	}
	if have == "" {
		owners, err := waitingOwners(ctx, db)
		if err != nil {
			return err
		}
		if len(owners) > 0 && !contains(owners, id) {
			return changed(dir, strings.Join(owners, ", "), id)
		}
		return writeNodeID(dir, id)
	}
	if have != id {
		return changed(dir, have, id)
	}
	return nil
}

// RenameNode gives the data directory dir (database db) the node id id on purpose: every message row of
// the node ids it held is moved to id, and <dir>/node-id is rewritten, in that order (a crash in between
// leaves rows that the next RenameNode moves again). The caller holds the directory's lock and no node is
// running on it. It returns the previous ids and the number of message rows moved.
func RenameNode(ctx context.Context, dir string, db *store.DB, id string) (from []string, moved int64, err error) {
	if strings.TrimSpace(id) == "" {
		return nil, 0, errors.New("node_id is empty")
	}
	have, err := readNodeID(dir)
	if err != nil {
		return nil, 0, err
	}
	// With the embedded database every row of it is this directory's: its content is in this spool.
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT node_id FROM messages WHERE node_id <> ? ORDER BY node_id`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			from = append(from, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		moved, err = queue.AdoptMessages(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	if have != "" && have != id && !contains(from, have) {
		from = append(from, have)
		sort.Strings(from)
	}
	return from, moved, writeNodeID(dir, id)
}

// changed is the refusal of CheckNodeID: what the directory belongs to, and the two ways out.
func changed(dir, have, want string) error {
	return fmt.Errorf("%w: data_dir %s belongs to node %q (%s), but this configuration's node_id is %q "+
		"(node_id defaults to hostname, which defaults to the machine's host name); its queued and quarantined "+
		"messages belong to %q. Either set `node_id: %s` in the configuration to keep the node as it was, or, "+
		"to rename the node on purpose, stop easymail and run `easymail rename-node --config FILE` once, which "+
		"moves the queue to %q (docs/operations.md, \"Renaming a node\")",
		ErrNodeIDChanged, dir, have, filepath.Join(dir, NodeIDFile), want, have, have, want)
}

// waitingOwners returns the node ids of the messages still waiting (to be delivered, or in quarantine).
func waitingOwners(ctx context.Context, db *store.DB) ([]string, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT DISTINCT m.node_id FROM messages m WHERE m.held = 1 OR m.status = 'quarantined'
		OR m.id IN (SELECT r.message_id FROM recipients r WHERE r.status IN ('queued', 'deferred')) ORDER BY m.node_id`)
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readNodeID returns the id in <dir>/node-id, "" when there is no such file.
func readNodeID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, NodeIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("data_dir: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("data_dir: %s is empty; write the node id in it (or remove it: the next start writes the configured one)",
			filepath.Join(dir, NodeIDFile))
	}
	return id, nil
}

// writeNodeID writes id to <dir>/node-id durably: a temporary file, fsynced, renamed over the old one, and
// the directory fsynced.
func writeNodeID(dir, id string) error {
	path := filepath.Join(dir, NodeIDFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	_, err = f.WriteString(id + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("data_dir: writing %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("data_dir: sync %s: %w", dir, err)
	}
	return nil
}
