package sqlite

// Added when the CRM builds FerretDB v1.24.2 (scripts/infra.sh).
//
// FerretDB 1.24 on SQLite makes an SQLite index for each MongoDB index, over
// the JSON text of the field, and never reads it: every filter but {_id: x},
// every sort and every count fetched the whole collection into FerretDB and
// filtered, sorted and counted it in Go (a rep's customer list at 100,000
// customers: 12 s). The services ask for what MongoDB answers through its
// indexes: equality on a few fields, maybe a range on the next one, sorted by
// the fields after them, a page at a time, and a count. This file answers
// those through indexes too, with the same queries as on MongoDB.
//
// The SQLite expression index over JSON text cannot serve them: the text of
// 10 sorts before that of 9, a date is a number of milliseconds, a string and
// an ObjectID look the same, and an array field holds one text for the whole
// array. So each MongoDB index whose keys are top-level fields gets a table of
// its own, "<table>_<uuid>_<index>_crm" (k BLOB PRIMARY KEY, rid) WITHOUT
// ROWID, kept in the same transaction as every insert, update and delete of
// the collection:
//
//   - k is the index key in MongoDB's order, as bytes that sort with memcmp:
//     per key field a type byte in BSON comparison order (null and missing <
//     numbers < strings < objects < arrays < binData < ObjectId < bool < date
//     < timestamp < regex), then the value (numbers as order-preserving
//     floats plus the exact int64 remainder, strings as UTF-8 with 0x00
//     escaped and 00 00 at the end, dates as signed milliseconds, ...: no
//     value's bytes are the start of another's), all bytes inverted for a
//     descending key; then the document's _id encoded the same way, so the
//     key is unique and ties come in _id order;
//   - an array value is indexed once per element (a multikey index, as
//     MongoDB does), an empty array under a type byte below null;
//   - rid is the document's rowid in the collection's table.
//
// Rows whose key starts with 0x00 are markers, never index entries:
// "M<i>" key field i has held an array (results may repeat a document, and the
// index cannot give the order of that field), "C<i>" it has held an object, a
// regex or a nested array (no order either), "X" a document had arrays in two
// key fields (MongoDB refuses those; the index is not used), "R" the table
// holds every document (a table made for an index over existing documents is
// filled a batch at a time in rowid order, and used once it is ready).
//
// Beside it, "<...>_crm_n" (p BLOB PRIMARY KEY, n) counts the documents under
// each key prefix of the index's leading fields (all but the last, or the one
// of a one-field index; the _id index: all documents), changed in the same
// transaction as the keys: a count of an equality filter is one row, whatever
// the number of documents (counting a million keys takes SQLite ~120 ms).
//
// A query (find, count, the first $match of an aggregation, the filter of
// update, delete and findAndModify) is planned here when it is not a lookup
// by _id: the index whose leading fields have equality conditions ($eq, or
// $in, or one value of an $all) and then a range ($gt/$gte/$lt/$lte on
// values of one type, as MongoDB brackets them) on the next field is chosen,
// preferring one that also gives the requested order; its key ranges are read
// in key order (forward or backward), joined to the documents by rowid, and
// several ranges ($in, or the branches of an $or, each planned on its own)
// are merged in sort order. What comes back is always a superset of the
// matches: FerretDB's handler applies the whole filter again. When the order
// is the requested one, the handler does not sort again and stops reading at
// its limit; when every condition of the filter is exactly what the key
// ranges select, a count comes from the count table or the keys, and a skip
// moves the range's start instead of reading documents.
//
// Writes to a collection share a gate that creating or dropping one of its
// indexes takes alone: a write keeps the tables of the indexes it saw at its
// start, and no index is added or dropped under it. Nothing here takes
// FerretDB's registry lock inside a transaction (its DDL holds that lock while
// it waits for SQLite's write lock).
//
// MongoDB non-unique indexes no longer get FerretDB's SQLite expression index
// (it was never read); unique ones keep it, as that is what enforces them.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// ---------------------------------------------------------------- key encoding

const (
	crmRankEmptyArray = 0x08
	crmRankNull       = 0x10
	crmRankNumber     = 0x20
	crmRankString     = 0x30
	crmRankObject     = 0x40
	crmRankArray      = 0x50
	crmRankBinary     = 0x60
	crmRankObjectID   = 0x70
	crmRankBool       = 0x80
	crmRankDate       = 0x90
	crmRankTimestamp  = 0xa0
	crmRankRegex      = 0xb0
)

// crmEncode appends v in the key order. ordered is false for the values an
// index entry cannot order (objects, regexes, arrays inside arrays): they get
// their type byte only.
func crmEncode(b []byte, v any) (_ []byte, ordered bool) {
	switch v := v.(type) {
	case types.NullType:
		return append(b, crmRankNull), true
	case float64:
		if math.IsNaN(v) {
			return append(b, crmRankNull), false
		}
		return crmNumber(append(b, crmRankNumber), v, 0), true
	case int32:
		return crmNumber(append(b, crmRankNumber), float64(v), 0), true
	case int64:
		f := float64(v)
		var delta int64
		if f >= 9.223372036854775807e18 {
			delta = (v - math.MaxInt64) - 1 // v - 2^63, without overflow
		} else {
			delta = v - int64(f)
		}
		return crmNumber(append(b, crmRankNumber), f, delta), true
	case string:
		b = append(b, crmRankString)
		for i := 0; i < len(v); i++ {
			if v[i] == 0 {
				b = append(b, 0, 0xff)
			} else {
				b = append(b, v[i])
			}
		}
		// terminated by 00 00 (00 inside is 00 ff): no string's bytes
		// start another's, so a range of keys starting with one string's
		// bytes holds that string only, and inverted bytes sort in reverse
		return append(b, 0, 0), true
	case types.Binary:
		b = append(b, crmRankBinary)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.B)))
		b = append(b, byte(v.Subtype))
		return append(b, v.B...), true
	case types.ObjectID:
		return append(append(b, crmRankObjectID), v[:]...), true
	case bool:
		if v {
			return append(b, crmRankBool, 1), true
		}
		return append(b, crmRankBool, 0), true
	case time.Time:
		return binary.BigEndian.AppendUint64(append(b, crmRankDate), uint64(v.UnixMilli())^(1<<63)), true
	case types.Timestamp:
		return binary.BigEndian.AppendUint64(append(b, crmRankTimestamp), uint64(v)), true
	case *types.Document:
		return append(b, crmRankObject), false
	case *types.Array:
		return append(b, crmRankArray), false
	case types.Regex:
		return append(b, crmRankRegex), false
	default:
		return append(b, crmRankRegex), false
	}
}

// crmNumber: a float64 whose bytes sort as the numbers do (-0 is 0), then
// the exact remainder of an int64 that the float64 rounded.
func crmNumber(b []byte, f float64, delta int64) []byte {
	if f == 0 {
		f = 0
	}
	bits := math.Float64bits(f)
	if bits>>63 == 1 {
		bits = ^bits
	} else {
		bits |= 1 << 63
	}
	b = binary.BigEndian.AppendUint64(b, bits)
	return binary.BigEndian.AppendUint64(b, uint64(delta)^(1<<63))
}

// crmEncodeDir encodes v for a key field, inverted when it is descending.
func crmEncodeDir(b []byte, v any, desc bool) ([]byte, bool) {
	start := len(b)
	b, ordered := crmEncode(b, v)
	if desc {
		for i := start; i < len(b); i++ {
			b[i] = ^b[i]
		}
	}
	return b, ordered
}

// crmRank is the type byte of a value a filter compares with (its type
// bracket), or 0 for values no range is pushed down for.
func crmRank(v any) byte {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) {
			return 0
		}
		return crmRankNumber
	case int32, int64:
		return crmRankNumber
	case string:
		return crmRankString
	case types.ObjectID:
		return crmRankObjectID
	case bool:
		return crmRankBool
	case time.Time:
		return crmRankDate
	case types.Timestamp:
		return crmRankTimestamp
	case types.Binary:
		return crmRankBinary
	}
	return 0
}

// crmCompare orders two values of one type bracket as the index does.
func crmCompare(a, b any) int {
	ea, _ := crmEncode(nil, a)
	eb, _ := crmEncode(nil, b)
	return bytes.Compare(ea, eb)
}

// crmEqualityValue: a value an equality condition can be looked up by (the
// index key of a document matching {f: v} holds exactly v's encoding).
func crmEqualityValue(v any) bool {
	if _, ok := v.(types.NullType); ok {
		return true
	}
	return crmRank(v) != 0
}

// crmSucc is the least byte string greater than every string starting with
// p; nil when there is none.
func crmSucc(p []byte) []byte {
	s := bytes.Clone(p)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] != 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}

// ---------------------------------------------------------------- indexes

type crmIndex struct {
	name   string
	fields []string
	desc   []bool
	side   string // the keys' table
	counts string // the count table
	levels []int  // the prefixes counted, in key fields
	hasID  bool   // _id is a key field: the key is unique without the suffix
	state  *crmState
}

// crmState is what this process knows of an index's tables. Only this
// FerretDB process writes the database, so it stays true once learnt.
type crmState struct {
	build    sync.Mutex // held while the tables are filled
	ready    atomic.Bool
	building atomic.Bool
	mu       sync.Mutex
	markers  map[string]bool
}

func (s *crmState) has(marker string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.markers[marker]
}

func (s *crmState) learn(marker string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markers[marker] = true
}

var (
	crmStates      sync.Map // keys' table -> *crmState
	crmKnownTables sync.Map // keys' tables this process made or found
	crmGates       sync.Map // "db\x00collection" -> *sync.RWMutex
)

// crmCursorKey is the count table's row holding how far (in rowid) filling
// the tables has come: math.MaxInt64 once they hold every document.
var crmCursorKey = []byte("\x00cursor")

func crmSideName(meta *metadata.Collection, index string) string {
	id := strings.ReplaceAll(meta.Settings.UUID, "-", "")
	if len(id) > 12 {
		id = id[:12]
	}
	return fmt.Sprintf("%s_%s_%s_crm", meta.TableName, id, index)
}

// crmLevels are the key prefixes (numbers of leading key fields) the count
// table keeps: every one but the whole key, which is about one document
// (a one-field index: that field; the _id index: the empty prefix, all).
func crmLevels(name string, fields []string) []int {
	if name == backends.DefaultIndexName {
		return []int{0}
	}
	top := len(fields) - 1
	if len(fields) == 1 {
		top = 1
	}
	var out []int
	for j := 1; j <= top; j++ {
		if fields[j-1] == "_id" {
			break
		}
		out = append(out, j)
	}
	return out
}

// crmFieldName: a field or a path of fields ("created_by.id") an index here
// may have as a key.
func crmFieldName(f string) bool {
	if f == "" || strings.ContainsAny(f, "$\x00") {
		return false
	}
	for _, part := range strings.Split(f, ".") {
		if part == "" {
			return false
		}
	}
	return true
}

// crmValue is a key field's value in a document (null when missing). A path
// through an array (an array of objects) is not indexed here: through is
// true, and the index is marked unusable, as MongoDB's rules for it (every
// element's field) are not kept.
func crmValue(doc *types.Document, field string) (v any, through bool) {
	parts := strings.Split(field, ".")
	var cur any = doc
	for i, part := range parts {
		d, ok := cur.(*types.Document)
		if !ok {
			if _, isArray := cur.(*types.Array); isArray && i > 0 {
				return nil, true
			}
			return types.Null, false
		}
		if cur, _ = d.Get(part); cur == nil {
			return types.Null, false
		}
	}
	return cur, false
}

// crmIndexes lists the collection's indexes this file keeps: those of
// fields and paths of fields, on an ordinary (not capped) collection.
func crmIndexes(meta *metadata.Collection) []*crmIndex {
	if meta == nil || meta.Capped() {
		return nil
	}
	var out []*crmIndex
next:
	for _, ix := range meta.Settings.Indexes {
		if len(ix.Key) == 0 || len(ix.Key) > 8 {
			continue
		}
		c := &crmIndex{name: ix.Name, side: crmSideName(meta, ix.Name)}
		c.counts = c.side + "_n"
		for _, k := range ix.Key {
			if !crmFieldName(k.Field) {
				continue next
			}
			c.fields = append(c.fields, k.Field)
			c.desc = append(c.desc, k.Descending)
			if k.Field == "_id" {
				c.hasID = true
			}
		}
		c.levels = crmLevels(ix.Name, c.fields)
		v, _ := crmStates.LoadOrStore(c.side, &crmState{markers: map[string]bool{}})
		c.state = v.(*crmState)
		out = append(out, c)
	}
	return out
}

func crmGate(dbName, coll string) *sync.RWMutex {
	v, _ := crmGates.LoadOrStore(dbName+"\x00"+coll, new(sync.RWMutex))
	return v.(*sync.RWMutex)
}

// crmWriting is held by a write for its whole length (defer crmWriting(c)()).
func crmWriting(c *collection) func() {
	g := crmGate(c.dbName, c.name)
	g.RLock()
	return g.RUnlock
}

// crmAltering is held alone while indexes are made or dropped.
func crmAltering(dbName, coll string) func() {
	g := crmGate(dbName, coll)
	g.Lock()
	return g.Unlock
}

// crmEnsure makes the tables of every index that lacks them and loads what
// is known of them. Tables made over existing documents are filled now when
// wait is set (createIndexes, which MongoDB also answers once the index is
// built), else in the background; they are used once filled, and kept by
// every write meanwhile. Once ready, this is an atomic load per index.
func crmEnsure(ctx context.Context, db *fsql.DB, meta *metadata.Collection, wait bool) []*crmIndex {
	ixs := crmIndexes(meta)
	for _, ix := range ixs {
		if !ix.state.ready.Load() {
			// on an error the index stays unused (queries scan, as they did
			// without this file) and the next call tries again
			_ = crmOpen(ctx, db, meta, ix, wait)
		}
	}
	return ixs
}

func crmOpen(ctx context.Context, db *fsql.DB, meta *metadata.Collection, ix *crmIndex, wait bool) error {
	if _, known := crmKnownTables.Load(ix.side); !known {
		for _, q := range []string{
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %q (k BLOB PRIMARY KEY, rid INTEGER NOT NULL) WITHOUT ROWID`, ix.side),
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %q (p BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID`, ix.counts),
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return lazyerrors.Error(err)
			}
		}
		rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT k FROM %q WHERE k < x'01'`, ix.side))
		if err != nil {
			return lazyerrors.Error(err)
		}
		for rows.Next() {
			var k []byte
			if err = rows.Scan(&k); err == nil && len(k) > 1 {
				ix.state.learn(string(k[1:]))
			}
		}
		rows.Close()
		var cursor int64
		q := fmt.Sprintf(`SELECT n FROM %q WHERE p = ?`, ix.counts)
		if err = db.QueryRowContext(ctx, q, crmCursorKey).Scan(&cursor); err == nil && cursor == math.MaxInt64 {
			ix.state.ready.Store(true)
		}
		crmKnownTables.Store(ix.side, true)
	}
	if ix.state.ready.Load() {
		return nil
	}
	if !wait {
		// a new (or empty) collection is filled at once: nothing to read
		var rid int64
		q := fmt.Sprintf(`SELECT rowid FROM %q LIMIT 1`, meta.TableName)
		if err := db.QueryRowContext(ctx, q).Scan(&rid); errors.Is(err, sql.ErrNoRows) {
			wait = true
		}
	}
	if wait {
		return crmFill(context.WithoutCancel(ctx), db, meta.TableName, ix)
	}
	if ix.state.building.CompareAndSwap(false, true) {
		go func() {
			defer ix.state.building.Store(false)
			_ = crmFill(context.Background(), db, meta.TableName, ix)
		}()
	}
	return nil
}

// crmFill indexes and counts the documents already stored, a batch of rowids
// per transaction (a writer of another collection waits for one batch at
// most), and records how far it came in the count table. Writers keep the
// keys meanwhile; they change the counts only for documents the fill has
// passed (it counts the others as it finds them), reading how far it came in
// their own transaction. A fill starts over from nothing (counts reset; keys
// a writer made are met with INSERT OR IGNORE), after a restart too.
func crmFill(ctx context.Context, db *fsql.DB, table string, ix *crmIndex) error {
	ix.state.build.Lock()
	defer ix.state.build.Unlock()
	if ix.state.ready.Load() {
		return nil
	}
	err := db.InTransaction(ctx, func(tx *fsql.Tx) error {
		if err := crmLock(ctx, tx, table); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %q`, ix.counts)); err != nil {
			return lazyerrors.Error(err)
		}
		return crmSetCursor(ctx, tx, ix, 0)
	})
	if err != nil {
		return err
	}
	var after int64
	for {
		var n int
		var last int64
		err = db.InTransaction(ctx, func(tx *fsql.Tx) error {
			n, last = 0, after
			if err := crmLock(ctx, tx, table); err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, fmt.Sprintf(
				`SELECT rowid, %s FROM %q WHERE rowid > ? ORDER BY rowid LIMIT 1000`,
				metadata.DefaultColumn, table), after)
			if err != nil {
				return lazyerrors.Error(err)
			}
			var rids []int64
			var docs []*types.Document
			for rows.Next() {
				var rid int64
				var b []byte
				if err = rows.Scan(&rid, &b); err != nil {
					rows.Close()
					return lazyerrors.Error(err)
				}
				doc, err := sjson.Unmarshal(b)
				if err != nil {
					rows.Close()
					return lazyerrors.Error(err)
				}
				rids, docs = append(rids, rid), append(docs, doc)
			}
			if err = rows.Err(); err != nil {
				rows.Close()
				return lazyerrors.Error(err)
			}
			rows.Close()
			n = len(docs)
			if n == 0 {
				return crmSetCursor(ctx, tx, ix, math.MaxInt64)
			}
			counted := make([]bool, n)
			for i := range counted {
				counted[i] = true
			}
			if err = crmPutMany(ctx, tx, ix, docs, rids, counted); err != nil {
				return err
			}
			last = rids[n-1]
			return crmSetCursor(ctx, tx, ix, last)
		})
		if err != nil {
			return err
		}
		if n == 0 {
			ix.state.ready.Store(true)
			return nil
		}
		after = last
	}
}

func crmSetCursor(ctx context.Context, tx *fsql.Tx, ix *crmIndex, rid int64) error {
	q := fmt.Sprintf(`INSERT INTO %q (p, n) VALUES (?, ?) ON CONFLICT (p) DO UPDATE SET n = excluded.n`, ix.counts)
	_, err := tx.ExecContext(ctx, q, crmCursorKey, rid)
	return crmErr(err)
}

// crmErr wraps an error, if any (lazyerrors.Error panics on nil).
func crmErr(err error) error {
	if err == nil {
		return nil
	}
	return lazyerrors.Error(err)
}

// crmFilled: whether the fill has passed the document (its counts are kept
// by writers), in the writer's transaction.
func crmFilled(ctx context.Context, tx *fsql.Tx, ix *crmIndex, rid int64) (bool, error) {
	if ix.state.ready.Load() {
		return true, nil
	}
	var cursor int64
	q := fmt.Sprintf(`SELECT n FROM %q WHERE p = ?`, ix.counts)
	if err := tx.QueryRowContext(ctx, q, crmCursorKey).Scan(&cursor); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, lazyerrors.Error(err)
	}
	return rid <= cursor, nil
}

// crmLock makes a transaction a write transaction from its first statement:
// one that reads first and writes later fails (SQLITE_BUSY) when another
// writer commits in between, while the lock itself is waited for.
func crmLock(ctx context.Context, tx *fsql.Tx, table string) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %q WHERE rowid = -1`, table))
	return err
}

func crmMark(ctx context.Context, tx *fsql.Tx, ix *crmIndex, marker string) error {
	if ix.state.has(marker) {
		return nil
	}
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT OR IGNORE INTO %q (k, rid) VALUES (?, 0)`, ix.side),
		append([]byte{0}, marker...))
	if err != nil {
		return lazyerrors.Error(err)
	}
	// known before the commit: at worst an index is thought multikey
	// (its order not used) for a write that did not happen
	ix.state.learn(marker)
	return nil
}

// crmDocKeys are a document's keys in one index, where each key field ends
// in each key, and the markers the document calls for.
type crmDocKeys struct {
	keys    [][]byte
	ends    [][]int
	markers []string
}

func crmKeys(doc *types.Document, ix *crmIndex) *crmDocKeys {
	out := new(crmDocKeys)
	alts := make([][][]byte, len(ix.fields))
	arrays := 0
	for i, f := range ix.fields {
		v, through := crmValue(doc, f)
		if through {
			out.markers = append(out.markers, "X")
			return out
		}
		arr, isArray := v.(*types.Array)
		if !isArray {
			b, ordered := crmEncodeDir(nil, v, ix.desc[i])
			if !ordered {
				out.markers = append(out.markers, fmt.Sprintf("C%d", i))
			}
			alts[i] = [][]byte{b}
			continue
		}
		arrays++
		out.markers = append(out.markers, fmt.Sprintf("M%d", i))
		if arr.Len() == 0 {
			b := []byte{crmRankEmptyArray}
			if ix.desc[i] {
				b[0] = ^b[0]
			}
			alts[i] = [][]byte{b}
			continue
		}
		seen := map[string]bool{}
		for j := 0; j < arr.Len(); j++ {
			b, ordered := crmEncodeDir(nil, must.NotFail(arr.Get(j)), ix.desc[i])
			if !ordered {
				out.markers = append(out.markers, fmt.Sprintf("C%d", i))
			}
			if !seen[string(b)] {
				seen[string(b)] = true
				alts[i] = append(alts[i], b)
			}
		}
	}
	if arrays > 1 {
		out.markers = append(out.markers, "X")
		return out
	}
	var suffix []byte
	if !ix.hasID {
		suffix, _ = crmEncodeDir(nil, must.NotFail(doc.Get("_id")), ix.desc[len(ix.desc)-1])
	}
	out.keys, out.ends = [][]byte{nil}, [][]int{nil}
	for _, a := range alts {
		keys := make([][]byte, 0, len(out.keys)*len(a))
		ends := make([][]int, 0, len(out.keys)*len(a))
		for i, k := range out.keys {
			for _, b := range a {
				key := append(bytes.Clone(k), b...)
				keys = append(keys, key)
				ends = append(ends, append(slices.Clone(out.ends[i]), len(key)))
			}
		}
		out.keys, out.ends = keys, ends
	}
	for i := range out.keys {
		out.keys[i] = append(out.keys[i], suffix...)
	}
	return out
}

// prefixes: the distinct key prefixes the document is counted under.
func (dk *crmDocKeys) prefixes(ix *crmIndex) map[string]bool {
	out := map[string]bool{}
	if len(dk.keys) == 0 {
		return out // no document (or one the index cannot hold)
	}
	for _, level := range ix.levels {
		if level == 0 {
			out[""] = true
			continue
		}
		for i, k := range dk.keys {
			out[string(k[:dk.ends[i][level-1]])] = true
		}
	}
	return out
}

// crmPutMany files the keys of new documents (and counts those marked).
func crmPutMany(ctx context.Context, tx *fsql.Tx, ix *crmIndex, docs []*types.Document, rids []int64, counted []bool) error {
	var keys [][]byte
	var keyRids []int64
	deltas := map[string]int64{}
	for i, doc := range docs {
		dk := crmKeys(doc, ix)
		for _, m := range dk.markers {
			if err := crmMark(ctx, tx, ix, m); err != nil {
				return err
			}
		}
		for _, k := range dk.keys {
			keys = append(keys, k)
			keyRids = append(keyRids, rids[i])
		}
		if counted[i] {
			for p := range dk.prefixes(ix) {
				deltas[p]++
			}
		}
	}
	if err := crmInsertKeys(ctx, tx, ix, keys, keyRids); err != nil {
		return err
	}
	return crmAddCounts(ctx, tx, ix, deltas)
}

func crmInsertKeys(ctx context.Context, tx *fsql.Tx, ix *crmIndex, keys [][]byte, rids []int64) error {
	for start := 0; start < len(keys); start += 200 {
		end := min(start+200, len(keys))
		marks := make([]string, 0, end-start)
		args := make([]any, 0, 2*(end-start))
		for i, k := range keys[start:end] {
			marks = append(marks, "(?, ?)")
			args = append(args, k, rids[start+i])
		}
		q := fmt.Sprintf(`INSERT OR IGNORE INTO %q (k, rid) VALUES %s`, ix.side, strings.Join(marks, ", "))
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return lazyerrors.Error(err)
		}
	}
	return nil
}

func crmDeleteKeys(ctx context.Context, tx *fsql.Tx, ix *crmIndex, keys [][]byte) error {
	for start := 0; start < len(keys); start += 200 {
		end := min(start+200, len(keys))
		marks := make([]string, 0, end-start)
		args := make([]any, 0, end-start)
		for _, k := range keys[start:end] {
			marks = append(marks, "?")
			args = append(args, k)
		}
		q := fmt.Sprintf(`DELETE FROM %q WHERE k IN (%s)`, ix.side, strings.Join(marks, ", "))
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return lazyerrors.Error(err)
		}
	}
	return nil
}

func crmAddCounts(ctx context.Context, tx *fsql.Tx, ix *crmIndex, deltas map[string]int64) error {
	var marks []string
	var args []any
	flush := func() error {
		if len(marks) == 0 {
			return nil
		}
		q := fmt.Sprintf(`INSERT INTO %q (p, n) VALUES %s ON CONFLICT (p) DO UPDATE SET n = n + excluded.n`,
			ix.counts, strings.Join(marks, ", "))
		_, err := tx.ExecContext(ctx, q, args...)
		marks, args = marks[:0], args[:0]
		return crmErr(err)
	}
	for p, d := range deltas {
		if d == 0 {
			continue
		}
		marks = append(marks, "(?, ?)")
		args = append(args, []byte(p), d)
		if len(marks) == 200 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// ---------------------------------------------------------------- writes

// crmPrepare, before a write's transaction (and inside its gate), makes the
// tables of the indexes the write keeps: DDL outside the transaction, as a
// table made in one that rolls back would be known here and missing there.
func crmPrepare(ctx context.Context, db *fsql.DB, meta *metadata.Collection) []*crmIndex {
	var out []*crmIndex
	for _, ix := range crmEnsure(ctx, db, meta, false) {
		if _, ok := crmKnownTables.Load(ix.side); ok {
			out = append(out, ix)
		}
	}
	return out
}

// crmInsertBatch runs FerretDB's multi-row INSERT of one batch and files the
// new documents' keys in the same transaction. It returns the INSERT's own
// error unchanged (a unique violation is told apart by the caller).
func crmInsertBatch(ctx context.Context, tx *fsql.Tx, ixs []*crmIndex, q string, args []any, batch []*types.Document) error {
	if len(ixs) == 0 {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	rows, err := tx.QueryContext(ctx, q+" RETURNING rowid, "+metadata.IDColumn, args...)
	if err != nil {
		return err
	}
	byID := make(map[string]int64, len(batch))
	for rows.Next() {
		var rid int64
		var id string
		if err = rows.Scan(&rid, &id); err != nil {
			rows.Close()
			return lazyerrors.Error(err)
		}
		byID[id] = rid
	}
	if err = rows.Err(); err != nil {
		rows.Close()
		return err
	}
	rows.Close()
	rids := make([]int64, len(batch))
	for i, doc := range batch {
		id := string(must.NotFail(sjson.MarshalSingleValue(must.NotFail(doc.Get("_id")))))
		rid, ok := byID[id]
		if !ok {
			return lazyerrors.Errorf("crm index: inserted document %s has no rowid", id)
		}
		rids[i] = rid
	}
	for _, ix := range ixs {
		counted := make([]bool, len(batch))
		for i, rid := range rids {
			if counted[i], err = crmFilled(ctx, tx, ix, rid); err != nil {
				return err
			}
		}
		if err = crmPutMany(ctx, tx, ix, batch, rids, counted); err != nil {
			return err
		}
	}
	return nil
}

// crmBeforeUpdate, in the update's transaction and before it, replaces the
// keys and counts of the stored version of the document by those of the new
// one (only what differs is written). first: the transaction's first call.
func crmBeforeUpdate(ctx context.Context, tx *fsql.Tx, ixs []*crmIndex, table string, doc *types.Document, idArg string, first bool) error {
	if len(ixs) == 0 {
		return nil
	}
	if first {
		if err := crmLock(ctx, tx, table); err != nil {
			return err
		}
	}
	old, rid, err := crmStored(ctx, tx, table, idArg)
	if err != nil || old == nil {
		return err
	}
	for _, ix := range ixs {
		if err = crmChange(ctx, tx, ix, rid, old, doc); err != nil {
			return err
		}
	}
	return nil
}

// crmChange moves a document's keys and counts from version old to version
// doc (either nil: an insert or a delete).
func crmChange(ctx context.Context, tx *fsql.Tx, ix *crmIndex, rid int64, old, doc *types.Document) error {
	before, after := new(crmDocKeys), new(crmDocKeys)
	if old != nil {
		before = crmKeys(old, ix)
	}
	if doc != nil {
		after = crmKeys(doc, ix)
	}
	for _, m := range after.markers {
		if err := crmMark(ctx, tx, ix, m); err != nil {
			return err
		}
	}
	gone, added := crmDiff(before.keys, after.keys)
	if err := crmDeleteKeys(ctx, tx, ix, gone); err != nil {
		return err
	}
	rids := make([]int64, len(added))
	for i := range rids {
		rids[i] = rid
	}
	if err := crmInsertKeys(ctx, tx, ix, added, rids); err != nil {
		return err
	}
	filled, err := crmFilled(ctx, tx, ix, rid)
	if err != nil || !filled {
		return err
	}
	deltas := map[string]int64{}
	for p := range before.prefixes(ix) {
		deltas[p]--
	}
	for p := range after.prefixes(ix) {
		deltas[p]++
	}
	return crmAddCounts(ctx, tx, ix, deltas)
}

func crmStored(ctx context.Context, tx *fsql.Tx, table string, idArg string) (*types.Document, int64, error) {
	rows, err := tx.QueryContext(ctx, fmt.Sprintf(`SELECT rowid, %s FROM %q WHERE %s = ?`,
		metadata.DefaultColumn, table, metadata.IDColumn), idArg)
	if err != nil {
		return nil, 0, lazyerrors.Error(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err = rows.Err(); err != nil {
			return nil, 0, lazyerrors.Error(err)
		}
		return nil, 0, nil
	}
	var rid int64
	var b []byte
	if err = rows.Scan(&rid, &b); err != nil {
		return nil, 0, lazyerrors.Error(err)
	}
	doc, err := sjson.Unmarshal(b)
	if err != nil {
		return nil, 0, lazyerrors.Error(err)
	}
	return doc, rid, nil
}

func crmDiff(before, after [][]byte) (gone, added [][]byte) {
	b := make(map[string]bool, len(before))
	for _, k := range before {
		b[string(k)] = true
	}
	a := make(map[string]bool, len(after))
	for _, k := range after {
		a[string(k)] = true
		if !b[string(k)] {
			added = append(added, k)
		}
	}
	for _, k := range before {
		if !a[string(k)] {
			gone = append(gone, k)
		}
	}
	return gone, added
}

// crmDeleteAll deletes documents by _id together with their keys and counts,
// in one transaction. handled is false for a capped collection.
func crmDeleteAll(ctx context.Context, c *collection, db *fsql.DB, meta *metadata.Collection, params *backends.DeleteAllParams) (*backends.DeleteAllResult, bool, error) {
	if params.RecordIDs != nil || meta.Capped() {
		return nil, false, nil
	}
	defer crmWriting(c)()
	ixs := crmPrepare(ctx, db, meta)
	var deleted int64
	err := db.InTransaction(ctx, func(tx *fsql.Tx) error {
		deleted = 0
		if err := crmLock(ctx, tx, meta.TableName); err != nil {
			return err
		}
		for _, id := range params.IDs {
			arg := string(must.NotFail(sjson.MarshalSingleValue(id)))
			old, rid, err := crmStored(ctx, tx, meta.TableName, arg)
			if err != nil {
				return err
			}
			if old == nil {
				continue
			}
			for _, ix := range ixs {
				if err = crmChange(ctx, tx, ix, rid, old, nil); err != nil {
					return err
				}
			}
			res, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %q WHERE rowid = ?`, meta.TableName), rid)
			if err != nil {
				return lazyerrors.Error(err)
			}
			n, _ := res.RowsAffected()
			deleted += n
		}
		return nil
	})
	if err != nil {
		return nil, true, lazyerrors.Error(err)
	}
	return &backends.DeleteAllResult{Deleted: int32(deleted)}, true, nil
}

// crmDrop forgets and drops the tables of a collection's indexes (all of
// them, or those named).
func crmDrop(ctx context.Context, db *fsql.DB, meta *metadata.Collection, indexes []string) {
	if meta == nil || db == nil {
		return
	}
	names := indexes
	if names == nil {
		for _, ix := range meta.Settings.Indexes {
			names = append(names, ix.Name)
		}
	}
	for _, name := range names {
		side := crmSideName(meta, name)
		_, _ = db.ExecContext(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %q`, side))
		_, _ = db.ExecContext(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %q`, side+"_n"))
		crmKnownTables.Delete(side)
		crmStates.Delete(side)
	}
}

// crmAfterVacuum: a full VACUUM may give the documents new rowids, which
// the keys hold; the tables are dropped and made again from the documents.
// (The CRM never compacts; a query between the two may miss documents.)
func crmAfterVacuum(ctx context.Context, c *collection, db *fsql.DB) {
	list, err := c.r.CollectionList(ctx, c.dbName)
	if err != nil {
		return
	}
	for _, meta := range list {
		func() {
			defer crmAltering(c.dbName, meta.Name)()
			crmDrop(ctx, db, meta, nil)
			crmEnsure(ctx, db, meta, true)
		}()
	}
}

// ---------------------------------------------------------------- planning

type crmCond struct {
	eq      []any // $eq / a plain value (one), $in (several)
	all     []any // $all: the document must hold each; the keys give one
	none    bool  // $in: []: nothing matches
	lo, hi  any
	loIncl  bool
	hiIncl  bool
	hasLo   bool
	hasHi   bool
	inexact bool // conditions on the field the key ranges do not express
}

// crmConditions reads a filter's top-level conditions. exact is false when
// some condition is not expressed (the handler still applies it).
func crmConditions(filter *types.Document, conds map[string]*crmCond) (exact bool) {
	exact = true
	for _, key := range filter.Keys() {
		v := must.NotFail(filter.Get(key))
		switch {
		case key == "$and":
			arr, ok := v.(*types.Array)
			if !ok {
				exact = false
				continue
			}
			for i := 0; i < arr.Len(); i++ {
				sub, ok := must.NotFail(arr.Get(i)).(*types.Document)
				if !ok || !crmConditions(sub, conds) {
					exact = false
				}
			}
			continue
		case key == "$comment":
			continue
		case !crmFieldName(key):
			exact = false
			continue
		}
		c := conds[key]
		if c == nil {
			c = new(crmCond)
			conds[key] = c
		}
		if !crmCondition(c, v) {
			exact = false
		}
	}
	return exact
}

func crmCondition(c *crmCond, v any) (exact bool) {
	doc, isDoc := v.(*types.Document)
	if !isDoc || doc.Len() == 0 || !strings.HasPrefix(doc.Keys()[0], "$") {
		if !crmEqualityValue(v) || c.eq != nil {
			c.inexact = true
			return false
		}
		c.eq = []any{v}
		return !c.inexact
	}
	for _, op := range doc.Keys() {
		arg := must.NotFail(doc.Get(op))
		switch op {
		case "$eq":
			if crmEqualityValue(arg) && c.eq == nil {
				c.eq = []any{arg}
			} else {
				c.inexact = true
			}
		case "$in":
			arr, ok := arg.(*types.Array)
			if !ok || c.eq != nil {
				c.inexact = true
				continue
			}
			if arr.Len() == 0 {
				c.none = true
				continue
			}
			vals := make([]any, 0, arr.Len())
			for i := 0; i < arr.Len(); i++ {
				e := must.NotFail(arr.Get(i))
				if !crmEqualityValue(e) {
					vals = nil
					break
				}
				vals = append(vals, e)
			}
			if vals == nil {
				c.inexact = true
			} else {
				c.eq = vals
			}
		case "$all":
			arr, ok := arg.(*types.Array)
			c.inexact = true // each value must be there: the keys give one
			if !ok {
				continue
			}
			for i := 0; i < arr.Len(); i++ {
				if e := must.NotFail(arr.Get(i)); crmEqualityValue(e) {
					c.all = append(c.all, e)
				}
			}
		case "$gt", "$gte":
			incl := op == "$gte"
			switch {
			case crmRank(arg) == 0:
				c.inexact = true
			case !c.hasLo:
				c.lo, c.loIncl, c.hasLo = arg, incl, true
			case crmRank(arg) == crmRank(c.lo):
				// two lower bounds ({from} and a cursor's): the higher one
				// is their intersection
				if d := crmCompare(arg, c.lo); d > 0 || (d == 0 && !incl) {
					c.lo, c.loIncl = arg, incl
				}
			default:
				c.inexact = true
			}
		case "$lt", "$lte":
			incl := op == "$lte"
			switch {
			case crmRank(arg) == 0:
				c.inexact = true
			case !c.hasHi:
				c.hi, c.hiIncl, c.hasHi = arg, incl, true
			case crmRank(arg) == crmRank(c.hi):
				if d := crmCompare(arg, c.hi); d < 0 || (d == 0 && !incl) {
					c.hi, c.hiIncl = arg, incl
				}
			default:
				c.inexact = true
			}
		default:
			c.inexact = true
		}
	}
	if c.hasLo && c.hasHi && crmRank(c.lo) != crmRank(c.hi) {
		// {$gt: 5, $lt: "x"}: no value of either type meets both; the
		// lower bound alone keeps the answer whole
		c.hasHi, c.inexact = false, true
	}
	return !c.inexact
}

type crmSortKey struct {
	field string
	desc  bool
}

func crmSortSpec(sort *types.Document) ([]crmSortKey, bool) {
	var out []crmSortKey
	for _, k := range sort.Keys() {
		if k == "" || strings.ContainsAny(k, ".$\x00") {
			return nil, false
		}
		var d int64
		switch v := must.NotFail(sort.Get(k)).(type) {
		case int64:
			d = v
		case int32:
			d = int64(v)
		case float64:
			d = int64(v)
		default:
			return nil, false
		}
		if d != 1 && d != -1 {
			return nil, false
		}
		out = append(out, crmSortKey{k, d == -1})
	}
	return out, true
}

// crmPart is one index's key ranges.
type crmPart struct {
	ix         *crmIndex
	ranges     [][2][]byte // [lo, hi); hi nil: no upper bound
	backward   bool
	countLevel int      // the count table has the ranges' prefixes at this level (else -1)
	prefixes   [][]byte // those prefixes
}

type crmPlan struct {
	parts       []*crmPart
	empty       bool         // nothing matches ($in: [])
	sorted      bool         // the result comes in the requested order
	merge       []crmSortKey // the order several ranges are merged in
	exact       bool         // the ranges select exactly the filter's matches, once each
	dedup       bool         // a document may come more than once
	constrained int          // key fields narrowed (the least of $or's branches)
}

const (
	crmMaxRanges = 1000 // ranges read one after another
	crmMaxMerge  = 16   // ranges merged in sort order (each holds a connection)
)

// crmPlanFor chooses the index(es) and key ranges for a filter and sort; nil
// when no index narrows the filter or gives the order.
func crmPlanFor(ctx context.Context, db *fsql.DB, ixs []*crmIndex, filter, sort *types.Document) *crmPlan {
	spec, sortable := crmSortSpec(sort)
	base := crmPlanConds(ctx, db, ixs, filter, spec, sortable)
	if base != nil && base.empty {
		return base
	}
	orv, err := filter.Get("$or")
	if err != nil {
		return base
	}
	branches, ok := orv.(*types.Array)
	if !ok || branches.Len() == 0 || branches.Len() > crmMaxMerge {
		return base
	}
	rest := filter.DeepCopy()
	rest.Remove("$or")
	p := &crmPlan{sorted: len(spec) > 0 && sortable, dedup: true, constrained: math.MaxInt}
	for i := 0; i < branches.Len(); i++ {
		b, ok := must.NotFail(branches.Get(i)).(*types.Document)
		if !ok {
			return base
		}
		and := must.NotFail(types.NewDocument("$and", must.NotFail(types.NewArray(rest, b))))
		bp := crmPlanConds(ctx, db, ixs, and, spec, sortable)
		if bp == nil || bp.constrained == 0 {
			return base
		}
		if bp.empty {
			continue
		}
		p.parts = append(p.parts, bp.parts...)
		p.sorted = p.sorted && bp.sorted
		p.constrained = min(p.constrained, bp.constrained)
	}
	if len(p.parts) == 0 {
		return &crmPlan{empty: true, sorted: true, exact: true}
	}
	streams := 0
	for _, part := range p.parts {
		streams += len(part.ranges)
	}
	if p.sorted && streams > crmMaxMerge {
		p.sorted = false
	}
	if p.sorted {
		p.merge = spec
	}
	if base == nil || p.constrained > base.constrained ||
		(p.constrained == base.constrained && p.sorted && !base.sorted) {
		return p
	}
	return base
}

// crmPlanConds plans a filter's top-level conditions ($or aside) on the best
// single index.
func crmPlanConds(ctx context.Context, db *fsql.DB, ixs []*crmIndex, filter *types.Document, spec []crmSortKey, sortable bool) *crmPlan {
	conds := map[string]*crmCond{}
	exact := true
	if filter != nil {
		exact = crmConditions(filter, conds)
	}
	for _, c := range conds {
		if c.none {
			return &crmPlan{empty: true, sorted: true, exact: exact}
		}
	}
	var best *crmPlan
	var bestScore [4]int
	for _, ix := range ixs {
		if !ix.state.ready.Load() || ix.state.has("X") {
			continue
		}
		p, score := crmPlanIndex(ctx, db, ix, conds, exact, spec, sortable)
		if p != nil && (best == nil || crmBetter(score, bestScore)) {
			best, bestScore = p, score
		}
	}
	return best
}

func crmBetter(a, b [4]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

func crmPlanIndex(ctx context.Context, db *fsql.DB, ix *crmIndex, conds map[string]*crmCond, filterExact bool,
	spec []crmSortKey, sortable bool) (*crmPlan, [4]int) {
	p := &crmPlan{exact: filterExact}
	part := &crmPart{ix: ix, countLevel: -1}
	p.parts = []*crmPart{part}
	used := map[string]bool{}
	fixed := map[string]bool{}   // one value: the same in every result
	several := map[string]bool{} // $in: one range per value, merged in order
	prefixes := [][]byte{{}}
	multi := false // a document may have keys in more than one range
	i := 0
	for ; i < len(ix.fields); i++ {
		f := ix.fields[i]
		c := conds[f]
		if c == nil {
			break
		}
		vals := c.eq
		if vals == nil && len(c.all) > 0 {
			vals = []any{crmRarest(ctx, db, ix, prefixes, i, c.all)}
		}
		if vals == nil || len(prefixes)*len(vals) > crmMaxRanges {
			break
		}
		if c.hasLo || c.hasHi {
			p.exact = false // both an equality and a range: the equality is used
		}
		next := make([][]byte, 0, len(prefixes)*len(vals))
		for _, pre := range prefixes {
			for _, v := range vals {
				b, _ := crmEncodeDir(bytes.Clone(pre), v, ix.desc[i])
				next = append(next, b)
			}
		}
		if len(vals) > 1 {
			several[f] = true
			if ix.state.has(fmt.Sprintf("M%d", i)) {
				multi = true // a document holding two of the values
			}
		} else {
			fixed[f] = true
		}
		prefixes = next
		used[f] = true
	}
	eqFields := i
	rangeAt := -1
	if i < len(ix.fields) {
		if c := conds[ix.fields[i]]; c != nil && c.eq == nil && len(c.all) == 0 && (c.hasLo || c.hasHi) {
			rangeAt = i
			used[ix.fields[i]] = true
			if ix.state.has(fmt.Sprintf("M%d", i)) {
				multi = true
				if c.hasLo && c.hasHi {
					p.exact = false // an array may meet each bound with another element
				}
			}
		}
	}
	for f := range conds {
		if !used[f] {
			p.exact = false
		}
	}
	p.constrained = eqFields
	if rangeAt >= 0 {
		p.constrained++
	}

	// The order. A sort field with an equality is left out (all results have
	// its value, or the merge orders its values) only when it is a key of
	// this index that never held an array: a document whose array holds the
	// value sorts by its least or greatest element instead. The other sort
	// fields must be the index's next fields (then its _id suffix), all in
	// the index's direction or all against it.
	var rest []crmSortKey
	for _, s := range spec {
		pos := slices.Index(ix.fields, s.field)
		plain := pos >= 0 && !ix.state.has(fmt.Sprintf("M%d", pos)) && !ix.state.has(fmt.Sprintf("C%d", pos))
		if (fixed[s.field] || several[s.field]) && plain {
			continue
		}
		if several[s.field] {
			sortable = false
		}
		rest = append(rest, s)
	}
	p.sorted = sortable && len(spec) > 0
	if p.sorted && len(rest) > 0 {
		relation := -1
		for k, s := range rest {
			pos := eqFields + k
			var desc bool
			switch {
			case pos < len(ix.fields) && ix.fields[pos] == s.field:
				desc = ix.desc[pos]
				if ix.state.has(fmt.Sprintf("M%d", pos)) || ix.state.has(fmt.Sprintf("C%d", pos)) {
					p.sorted = false
				}
			case pos == len(ix.fields) && !ix.hasID && s.field == "_id":
				desc = ix.desc[len(ix.desc)-1]
			default:
				p.sorted = false
			}
			if !p.sorted {
				break
			}
			r := 0
			if s.desc != desc {
				r = 1
			}
			if relation >= 0 && r != relation {
				p.sorted = false
				break
			}
			relation = r
		}
		part.backward = relation == 1
	}
	if p.constrained == 0 && !p.sorted {
		return nil, [4]int{}
	}

	// The key ranges.
	for _, pre := range prefixes {
		if rangeAt < 0 {
			if len(pre) == 0 {
				part.ranges = append(part.ranges, [2][]byte{{0x01}, nil})
			} else {
				part.ranges = append(part.ranges, [2][]byte{pre, crmSucc(pre)})
			}
			continue
		}
		c := conds[ix.fields[rangeAt]]
		hasLo, hasHi := c.hasLo, c.hasHi
		if multi && hasLo && hasHi {
			hasHi = false
		}
		part.ranges = append(part.ranges, crmRange(pre, c, hasLo, hasHi, ix.desc[rangeAt]))
	}
	if len(part.ranges) > 1 && p.sorted {
		if len(part.ranges) > crmMaxMerge {
			p.sorted = false
		} else {
			p.merge = spec
		}
	}
	for k := range ix.fields {
		if ix.state.has(fmt.Sprintf("M%d", k)) && !(k < eqFields && fixed[ix.fields[k]]) {
			p.dedup = true
		}
	}
	if multi {
		p.dedup = true
	}
	if p.dedup {
		p.exact = false
	}
	if rangeAt < 0 && slices.Contains(ix.levels, eqFields) {
		part.countLevel, part.prefixes = eqFields, prefixes
	}
	score := [4]int{p.constrained, 0, -len(part.ranges), -len(ix.fields)}
	if p.sorted {
		score[1] = 1
	}
	return p, score
}

// crmRange is the key range of the values between a condition's bounds, in
// the type bracket of its bound(s), after prefix pre.
func crmRange(pre []byte, c *crmCond, hasLo, hasHi bool, desc bool) [2][]byte {
	var rank byte
	if hasLo {
		rank = crmRank(c.lo)
	} else {
		rank = crmRank(c.hi)
	}
	enc := func(v any) []byte {
		b, _ := crmEncodeDir(bytes.Clone(pre), v, desc)
		return b
	}
	class := func(r byte) []byte {
		if desc {
			r = ^r
		}
		return append(bytes.Clone(pre), r)
	}
	var lo, hi []byte
	if !desc {
		switch {
		case !hasLo:
			lo = class(rank)
		case c.loIncl:
			lo = enc(c.lo)
		default:
			lo = crmSucc(enc(c.lo))
		}
		switch {
		case !hasHi:
			hi = class(rank + 1)
		case c.hiIncl:
			hi = crmSucc(enc(c.hi))
		default:
			hi = enc(c.hi)
		}
		return [2][]byte{lo, hi}
	}
	switch {
	case !hasHi:
		lo = class(rank)
	case c.hiIncl:
		lo = enc(c.hi)
	default:
		lo = crmSucc(enc(c.hi))
	}
	switch {
	case !hasLo:
		hi = crmSucc(class(rank))
	case c.loIncl:
		hi = crmSucc(enc(c.lo))
	default:
		hi = enc(c.lo)
	}
	return [2][]byte{lo, hi}
}

// crmRarest picks, of the values an $all needs, the one held by the fewest
// documents (the count table, else a bounded count of keys): a search for
// 恒通 among 科技 companies reads the 恒通 keys.
func crmRarest(ctx context.Context, db *fsql.DB, ix *crmIndex, prefixes [][]byte, i int, vals []any) any {
	if len(vals) == 1 || len(prefixes) != 1 {
		return vals[0]
	}
	counted := slices.Contains(ix.levels, i+1)
	best, bestN := vals[0], int64(math.MaxInt64)
	for _, v := range vals {
		b, _ := crmEncodeDir(bytes.Clone(prefixes[0]), v, ix.desc[i])
		var n int64
		var err error
		if counted {
			err = db.QueryRowContext(ctx, fmt.Sprintf(`SELECT n FROM %q WHERE p = ?`, ix.counts), b).Scan(&n)
			if errors.Is(err, sql.ErrNoRows) {
				n, err = 0, nil
			}
		} else {
			q := fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %q WHERE k >= ? AND k < ? LIMIT 2000)`, ix.side)
			err = db.QueryRowContext(ctx, q, b, crmSucc(b)).Scan(&n)
		}
		if err != nil {
			return vals[0]
		}
		if n < bestN {
			best, bestN = v, n
		}
	}
	return best
}

// ---------------------------------------------------------------- reading

func crmRangeSQL(part *crmPart, r [2][]byte, what string, order bool) (string, []any) {
	q := what + ` WHERE s.k >= ?`
	args := []any{r[0]}
	if r[1] != nil {
		q += ` AND s.k < ?`
		args = append(args, r[1])
	}
	switch {
	case !order:
	case part.backward:
		q += ` ORDER BY s.k DESC`
	default:
		q += ` ORDER BY s.k`
	}
	return q, args
}

func crmSelect(table string, part *crmPart) string {
	return fmt.Sprintf(`SELECT s.rid, t.%s FROM %q AS s JOIN %q AS t ON t.rowid = s.rid`,
		metadata.DefaultColumn, part.ix.side, table)
}

// crmCount counts an exact plan's matches: count table rows, else keys.
func crmCount(ctx context.Context, db *fsql.DB, p *crmPlan) (int64, error) {
	if p.empty {
		return 0, nil
	}
	var total int64
	for _, part := range p.parts {
		if part.countLevel >= 0 {
			for _, pre := range part.prefixes {
				var n int64
				q := fmt.Sprintf(`SELECT n FROM %q WHERE p = ?`, part.ix.counts)
				if err := db.QueryRowContext(ctx, q, pre).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
					return 0, lazyerrors.Error(err)
				}
				total += n
			}
			continue
		}
		for _, r := range part.ranges {
			q, args := crmRangeSQL(part, r, fmt.Sprintf(`SELECT count(*) FROM %q AS s`, part.ix.side), false)
			var n int64
			if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
				return 0, lazyerrors.Error(err)
			}
			total += n
		}
	}
	return total, nil
}

// crmApplySkip moves the start of a single exact range past `skip` keys
// (counted in the index, no document read): page 500 costs a count of keys.
func crmApplySkip(ctx context.Context, db *fsql.DB, part *crmPart, skip int64) (empty bool, err error) {
	q, args := crmRangeSQL(part, part.ranges[0], fmt.Sprintf(`SELECT s.k FROM %q AS s`, part.ix.side), true)
	q += ` LIMIT 1 OFFSET ?`
	args = append(args, skip)
	var k []byte
	if err = db.QueryRowContext(ctx, q, args...).Scan(&k); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return true, nil
		}
		return false, lazyerrors.Error(err)
	}
	if part.backward {
		part.ranges[0][1] = append(bytes.Clone(k), 0)
	} else {
		part.ranges[0][0] = k
	}
	return false, nil
}

type crmStream struct {
	rows *fsql.Rows
	doc  *types.Document
	rid  int64
	key  []byte
	done bool
}

type crmRangeRef struct {
	part *crmPart
	r    [2][]byte
}

// crmIterator reads the plan's ranges: one after another, or merged in the
// sort order; documents seen already are skipped when a document can have
// keys in more than one place.
type crmIterator struct {
	m       sync.Mutex
	ctx     context.Context
	db      *fsql.DB
	table   string
	p       *crmPlan
	todo    []crmRangeRef
	streams []*crmStream
	seen    map[int64]struct{}
	closed  bool
}

func (it *crmIterator) open(ref crmRangeRef) (*crmStream, error) {
	q, args := crmRangeSQL(ref.part, ref.r, crmSelect(it.table, ref.part), true)
	rows, err := it.db.QueryContext(it.ctx, q, args...)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}
	return &crmStream{rows: rows}, nil
}

func (it *crmIterator) advance(s *crmStream) error {
	if !s.rows.Next() {
		err := s.rows.Err()
		s.rows.Close()
		s.done = true
		if err != nil {
			return lazyerrors.Error(err)
		}
		return nil
	}
	var b []byte
	if err := s.rows.Scan(&s.rid, &b); err != nil {
		return lazyerrors.Error(err)
	}
	doc, err := sjson.Unmarshal(b)
	if err != nil {
		return lazyerrors.Error(err)
	}
	s.doc = doc
	if it.p.merge != nil {
		s.key = s.key[:0]
		for _, k := range it.p.merge {
			v, err := doc.Get(k.field)
			if err != nil {
				v = types.Null
			}
			s.key, _ = crmEncodeDir(s.key, v, k.desc)
		}
		s.key, _ = crmEncodeDir(s.key, must.NotFail(doc.Get("_id")), it.p.merge[len(it.p.merge)-1].desc)
	}
	return nil
}

// Next implements iterator.Interface.
func (it *crmIterator) Next() (struct{}, *types.Document, error) {
	it.m.Lock()
	defer it.m.Unlock()
	var unused struct{}
	for {
		if it.closed {
			return unused, nil, iterator.ErrIteratorDone
		}
		if err := context.Cause(it.ctx); err != nil {
			it.close()
			return unused, nil, lazyerrors.Error(err)
		}
		s, err := it.pick()
		if err != nil {
			it.close()
			return unused, nil, err
		}
		if s == nil {
			it.close()
			return unused, nil, iterator.ErrIteratorDone
		}
		doc, rid := s.doc, s.rid
		if it.p.merge != nil {
			if err = it.advance(s); err != nil {
				it.close()
				return unused, nil, err
			}
		}
		if it.seen != nil {
			if _, dup := it.seen[rid]; dup {
				continue
			}
			it.seen[rid] = struct{}{}
		}
		return unused, doc, nil
	}
}

// pick returns the stream whose current document comes next.
func (it *crmIterator) pick() (*crmStream, error) {
	if it.p.merge != nil {
		if it.streams == nil {
			for _, ref := range it.todo {
				s, err := it.open(ref)
				if err != nil {
					return nil, err
				}
				it.streams = append(it.streams, s)
				if err = it.advance(s); err != nil {
					return nil, err
				}
			}
			it.todo = nil
		}
		var best *crmStream
		for _, s := range it.streams {
			if !s.done && (best == nil || bytes.Compare(s.key, best.key) < 0) {
				best = s
			}
		}
		return best, nil
	}
	for {
		if len(it.streams) == 0 {
			if len(it.todo) == 0 {
				return nil, nil
			}
			s, err := it.open(it.todo[0])
			if err != nil {
				return nil, err
			}
			it.todo = it.todo[1:]
			it.streams = []*crmStream{s}
		}
		s := it.streams[0]
		if err := it.advance(s); err != nil {
			return nil, err
		}
		if !s.done {
			return s, nil
		}
		it.streams = nil
	}
}

// Close implements iterator.Interface.
func (it *crmIterator) Close() {
	it.m.Lock()
	defer it.m.Unlock()
	it.close()
}

func (it *crmIterator) close() {
	for _, s := range it.streams {
		if !s.done {
			s.rows.Close()
			s.done = true
		}
	}
	it.closed = true
}

// crmQuery answers Collection.Query through an index when it can (handled).
func crmQuery(ctx context.Context, db *fsql.DB, meta *metadata.Collection, params *backends.QueryParams) (*backends.QueryResult, bool, error) {
	if params.OnlyRecordIDs || meta.Capped() || crmByID(params.Filter) {
		return nil, false, nil
	}
	ixs := crmEnsure(ctx, db, meta, false)
	if params.CRMCount && params.Filter.Len() == 0 {
		for _, ix := range ixs {
			if ix.name == backends.DefaultIndexName && ix.state.ready.Load() {
				n, err := crmCount(ctx, db, &crmPlan{parts: []*crmPart{{ix: ix, countLevel: 0, prefixes: [][]byte{{}}}}})
				return crmCounted(ctx, n), true, err
			}
		}
		var n int64
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %q`, meta.TableName)).Scan(&n); err != nil {
			return nil, true, lazyerrors.Error(err)
		}
		return crmCounted(ctx, n), true, nil
	}
	p := crmPlanFor(ctx, db, ixs, params.Filter, params.CRMSort)
	if params.CRMCount {
		if p == nil || !p.exact {
			// the handler counts what an ordinary query returns
			return &backends.QueryResult{Iter: newQueryIterator(ctx, nil, false)}, true, nil
		}
		n, err := crmCount(ctx, db, p)
		return crmCounted(ctx, n), true, err
	}
	if p == nil {
		return nil, false, nil
	}
	res := &backends.QueryResult{CRMSorted: p.sorted}
	if p.empty {
		res.CRMSkipped = true
		res.Iter = newQueryIterator(ctx, nil, false)
		return res, true, nil
	}
	if params.CRMSkip > 0 && p.exact && p.sorted && len(p.parts) == 1 && len(p.parts[0].ranges) == 1 {
		empty, err := crmApplySkip(ctx, db, p.parts[0], params.CRMSkip)
		if err != nil {
			return nil, true, err
		}
		res.CRMSkipped = true
		if empty {
			res.Iter = newQueryIterator(ctx, nil, false)
			return res, true, nil
		}
	}
	it := &crmIterator{ctx: ctx, db: db, table: meta.TableName, p: p}
	for _, part := range p.parts {
		for _, r := range part.ranges {
			it.todo = append(it.todo, crmRangeRef{part, r})
		}
	}
	if p.dedup {
		it.seen = map[int64]struct{}{}
	}
	res.Iter = it
	return res, true, nil
}

func crmCounted(ctx context.Context, n int64) *backends.QueryResult {
	return &backends.QueryResult{Iter: newQueryIterator(ctx, nil, false), CRMCounted: true, CRMN: n}
}

// crmByID: a lookup of one _id, or of a list of them, which FerretDB's own
// pushdown and crm_idpush.go answer in one query.
func crmByID(filter *types.Document) bool {
	v, err := filter.Get("_id")
	if err != nil {
		return false
	}
	switch v.(type) {
	case string, types.ObjectID:
		return true
	}
	clause, _ := crmIDInClause(filter)
	return clause != ""
}

// crmExplain reports the plan crmQuery would follow: the indexes, the
// ranges, whether the order and the count come from them, and SQLite's own
// plan of the first range's query.
func crmExplain(ctx context.Context, db *fsql.DB, meta *metadata.Collection, params *backends.ExplainParams) (*backends.ExplainResult, bool, error) {
	if meta.Capped() || crmByID(params.Filter) {
		return nil, false, nil
	}
	ixs := crmEnsure(ctx, db, meta, false)
	p := crmPlanFor(ctx, db, ixs, params.Filter, params.CRMSort)
	if p == nil {
		return nil, false, nil
	}
	plan := types.MakeArray(4)
	indexes := types.MakeArray(1)
	ranges := 0
	count := "keys"
	if !p.exact {
		count = "documents"
	}
	for _, part := range p.parts {
		indexes.Append(part.ix.name)
		ranges += len(part.ranges)
		if part.countLevel >= 0 && p.exact {
			count = "table"
		}
	}
	if len(p.parts) > 0 {
		part := p.parts[0]
		q, args := crmRangeSQL(part, part.ranges[0], crmSelect(meta.TableName, part), true)
		rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			return nil, true, lazyerrors.Error(err)
		}
		for rows.Next() {
			var id, parent, notused int32
			var detail string
			if err = rows.Scan(&id, &parent, &notused, &detail); err != nil {
				rows.Close()
				return nil, true, lazyerrors.Error(err)
			}
			plan.Append(fmt.Sprintf("id=%d parent=%d notused=%d detail=%s", id, parent, notused, detail))
		}
		rows.Close()
	}
	index := ""
	if len(p.parts) > 0 {
		index = p.parts[0].ix.name
	}
	crm := must.NotFail(types.NewDocument(
		"index", index,
		"indexes", indexes,
		"ranges", int32(ranges),
		"constrained", int32(p.constrained),
		"sorted", p.sorted,
		"exact", p.exact,
		"dedup", p.dedup,
		"empty", p.empty,
		"count", count,
	))
	return &backends.ExplainResult{
		QueryPlanner:   must.NotFail(types.NewDocument("Plan", plan, "crm", crm)),
		FilterPushdown: p.constrained > 0 || p.empty,
		SortPushdown:   p.sorted,
	}, true, nil
}
