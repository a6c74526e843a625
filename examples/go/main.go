// The redilock demo in Go: several processes update one shared file, which must always be
// found in its valid state. Each update is a read, a deliberately slow two-step write, and a
// check; with the lock no process ever sees a half-written file or loses an update. The file
// also checks fencing: each write carries the lock's fencing number, and a number not above the
// last one accepted is refused as a stale write. Then the same run without the lock (and so
// without fences) shows the errors the lock prevents. The scenario, arguments and output are
// those of examples/c/demo.c.
//
//	REDIS_URL=redis://127.0.0.1:6379 ./demo [processes] [iterations]
//
// Go cannot fork, so the workers are this program run again with workerFlag; each reports
// its counts and lock waits to the parent through a pipe (file descriptor 3).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	redilock "github.com/redilock/redilock/bindings/go"
)

const (
	lockName   = "redilock-demo:ledger"
	lockTTL    = 10 * time.Second
	workerFlag = "-worker"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == workerFlag {
		os.Exit(workerMain(os.Args[2:]))
	}
	url := os.Getenv("REDIS_URL")
	processes, iterations := intArg(1, 4), intArg(2, 250)
	if url == "" || processes < 1 || iterations < 1 {
		fmt.Fprintf(os.Stderr, "usage: REDIS_URL=redis://host:port %s [processes] [iterations]\n", os.Args[0])
		os.Exit(2)
	}
	fmt.Printf("redilock %s demo against %s\n\n", redilock.Version(), url)
	withLock := run(processes, iterations, true)
	withoutLock := run(processes, iterations, false)
	fmt.Printf("result: %d errors with the lock, %d without it\n", withLock, withoutLock)
	if withLock != 0 {
		os.Exit(1)
	}
}

// intArg is os.Args[i] as a number, fallback when absent, 0 when not a number.
func intArg(i, fallback int) int {
	if len(os.Args) <= i {
		return fallback
	}
	n, _ := strconv.Atoi(os.Args[i])
	return n
}

// ledger is the content of the ledger file, which holds
// "<count> <count * 7> <fence of the last accepted write>"; anything else is a torn (invalid)
// state, whose count is whatever could be read.
type ledger struct {
	count int
	fence uint64
	valid bool
}

func readLedger(path string) ledger {
	var l ledger
	text, err := os.ReadFile(path)
	if err != nil {
		return l
	}
	var check int
	_, err = fmt.Sscanf(string(text), "%d %d %d", &l.count, &check, &l.fence)
	l.valid = err == nil && check == l.count*7
	return l
}

func writeLedger(path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write ledger:", err)
	}
}

// outcome is what the resource found of one update.
type outcome int

const (
	updated outcome = iota
	tornRead
	staleWrite
)

// updateLedger is one update carrying fence (0: none, not checked): it reads, refuses a stale
// fence (each hold writes once, so its fence must be above the last one accepted), writes a
// half-done state, pauses, and writes the new valid state.
func updateLedger(path string, fence uint64) outcome {
	l := readLedger(path)
	if fence != 0 && fence <= l.fence {
		return staleWrite
	}
	writeLedger(path, strconv.Itoa(l.count+1)) // torn: the check number and fence are missing
	time.Sleep(200 * time.Microsecond)
	writeLedger(path, fmt.Sprintf("%d %d %d", l.count+1, (l.count+1)*7, fence))
	if !l.valid {
		return tornRead
	}
	return updated
}

// lockedUpdate takes the lock, updates the ledger with the lock's fence, and unlocks; wait is
// how long the lock took, err a failed lock call (nothing was written then) or unlock.
func lockedUpdate(ctx context.Context, client *redilock.Client, path string) (result outcome, wait time.Duration, err error) {
	asked := time.Now()
	lock, err := client.Lock(ctx, lockName, 0)
	if err != nil {
		return updated, 0, fmt.Errorf("lock: %w", err)
	}
	wait = time.Since(asked)
	defer func() {
		if unlockErr := lock.Unlock(ctx); errors.Is(unlockErr, redilock.ErrNotOwner) {
			err = fmt.Errorf("unlock: the lease ran out while held (fence %d): %w", lock.Fence(), unlockErr)
		} else if unlockErr != nil {
			err = fmt.Errorf("unlock: %w", unlockErr)
		}
	}()
	return updateLedger(path, lock.Fence()), wait, nil
}

// workerMain runs one worker: args are id, iterations, "lock" or "nolock", and the ledger path.
// It writes its error and stale write counts, then one lock wait in milliseconds per line, to
// descriptor 3.
func workerMain(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "worker: want id, iterations, lock|nolock, path")
		return 2
	}
	id, _ := strconv.Atoi(args[0])
	iterations, _ := strconv.Atoi(args[1])
	useLock, path := args[2] == "lock", args[3]
	ctx := context.Background()

	var client *redilock.Client
	if useLock {
		var err error
		if client, err = redilock.New(os.Getenv("REDIS_URL"), redilock.WithDefaultTTL(lockTTL)); err != nil {
			fmt.Fprintf(os.Stderr, "worker %d: %v\n", id, err)
			return 1
		}
		defer client.Close()
	}
	failures, staleWrites := 0, 0 // failures: torn reads and failed lock calls
	var waits []float64
	for i := range iterations {
		var result outcome
		var wait time.Duration
		var err error
		if useLock {
			result, wait, err = lockedUpdate(ctx, client, path)
		} else {
			result = updateLedger(path, 0)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "worker %d: %v\n", id, err)
			failures++
		}
		switch result {
		case tornRead:
			failures++
		case staleWrite:
			staleWrites++
		}
		waits = append(waits, float64(wait.Microseconds())/1e3)
		if (i+1)*4/iterations != i*4/iterations { // each quarter
			fmt.Printf("  worker %d: %d/%d updates\n", id, i+1, iterations)
		}
	}

	report := bufio.NewWriter(os.NewFile(3, "report"))
	fmt.Fprintln(report, failures, staleWrites)
	for _, wait := range waits {
		fmt.Fprintln(report, wait)
	}
	if err := report.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "worker %d: report: %v\n", id, err)
		return 1
	}
	return 0
}

// worker is a running worker process and the read end of its report pipe.
type worker struct {
	cmd    *exec.Cmd
	report *os.File
}

func startWorker(self string, id, iterations int, useLock bool, path string) (*worker, error) {
	mode := "nolock"
	if useLock {
		mode = "lock"
	}
	report, reportWriter, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer reportWriter.Close() // the child holds its own copy
	cmd := exec.Command(self, workerFlag, strconv.Itoa(id), strconv.Itoa(iterations), mode, path)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{reportWriter}
	if err := cmd.Start(); err != nil {
		report.Close()
		return nil, err
	}
	return &worker{cmd: cmd, report: report}, nil
}

// finish reads the worker's report and waits for it to exit.
func (w *worker) finish() (failures, staleWrites int, waits []float64, err error) {
	defer w.report.Close()
	scanner := bufio.NewScanner(w.report)
	if scanner.Scan() {
		fmt.Sscan(scanner.Text(), &failures, &staleWrites)
	}
	for scanner.Scan() {
		wait, _ := strconv.ParseFloat(scanner.Text(), 64)
		waits = append(waits, wait)
	}
	io.Copy(io.Discard, w.report) // should the scanner stop early, the worker must not block on a full pipe
	return failures, staleWrites, waits, w.cmd.Wait()
}

// run runs the workers as separate processes and returns the number of errors seen.
func run(processes, iterations int, useLock bool) int {
	file, err := os.CreateTemp("", "redilock-demo-ledger")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	file.Close()
	path := file.Name()
	defer os.Remove(path)
	writeLedger(path, "0 0 0")
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	mode := "WITHOUT the lock"
	if useLock {
		mode = "with the lock"
	}
	fmt.Printf("%s: %d processes x %d updates of one file\n", mode, processes, iterations)
	start := time.Now()
	var workers []*worker
	failedWorkers := 0
	for id := range processes {
		w, err := startWorker(self, id, iterations, useLock, path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "worker %d: %v\n", id, err)
			failedWorkers++
			continue
		}
		workers = append(workers, w)
	}
	tornReads, staleWrites := 0, 0
	var waits []float64
	for _, w := range workers {
		failures, stale, workerWaits, err := w.finish()
		tornReads += failures
		staleWrites += stale
		waits = append(waits, workerWaits...)
		if err != nil {
			failedWorkers++
		}
	}
	elapsed := time.Since(start).Seconds()

	final := readLedger(path)
	total := processes * iterations
	lost := max(total-staleWrites-final.count, 0) // a refused stale write is not lost
	errorCount := tornReads + staleWrites + lost + failedWorkers
	if !final.valid {
		errorCount++
	}
	fmt.Printf("  summary: %d x %d = %d updates, errors: %d (torn reads %d, lost updates %d",
		processes, iterations, total, errorCount, tornReads, lost)
	if useLock {
		fmt.Printf(", stale writes %d", staleWrites)
	}
	fmt.Printf("), %.0f updates/s", float64(total)/elapsed)
	if useLock && len(waits) > 0 {
		slices.Sort(waits)
		fmt.Printf(", lock wait p50 %.2f ms, p99 %.2f ms, last fence %d",
			waits[len(waits)/2], waits[len(waits)*99/100], final.fence)
	}
	fmt.Printf("\n\n")
	return errorCount
}
