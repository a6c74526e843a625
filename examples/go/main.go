// The redilock demo in Go: several processes update one shared file, which must always be
// found in its valid state. Each update is a read, a deliberately slow two-step write, and a
// check; with the lock no process ever sees a half-written file or loses an update. Then the
// same run without the lock shows the errors the lock prevents. The scenario, arguments and
// output are those of examples/c/demo.c.
//
//	REDIS_URL=redis://127.0.0.1:6379 ./demo [processes] [iterations]
//
// Go cannot fork, so the workers are this program run again with workerFlag; each reports
// its errors and lock waits to the parent through a pipe (file descriptor 3).
package main

import (
	"bufio"
	"context"
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

// readLedger returns the count in the ledger file, which holds "<count> <count * 7>";
// anything else is a torn (invalid) state.
func readLedger(path string) (count int, valid bool) {
	text, err := os.ReadFile(path)
	var check int
	if err != nil {
		return 0, false
	}
	if _, err := fmt.Sscanf(string(text), "%d %d", &count, &check); err != nil {
		return count, false
	}
	return count, check == count*7
}

func writeLedger(path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write ledger:", err)
	}
}

// updateLedger reads, writes a half-done state, pauses, and writes the new valid state; it
// returns 1 if the state it read was torn.
func updateLedger(path string) int {
	count, valid := readLedger(path)
	writeLedger(path, strconv.Itoa(count+1)) // torn: the check number is missing
	time.Sleep(200 * time.Microsecond)
	writeLedger(path, fmt.Sprintf("%d %d", count+1, (count+1)*7))
	if valid {
		return 0
	}
	return 1
}

// workerMain runs one worker: args are id, iterations, "lock" or "nolock", and the ledger path.
// It writes its error count, then one lock wait in milliseconds per line, to descriptor 3.
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
	errors := 0
	var waits []float64
	for i := range iterations {
		asked := time.Now()
		var lock *redilock.Lock
		if useLock {
			var err error
			if lock, err = client.Lock(ctx, lockName, 0); err != nil {
				fmt.Fprintf(os.Stderr, "worker %d: lock: %v\n", id, err)
				errors++
				continue
			}
		}
		waits = append(waits, float64(time.Since(asked).Microseconds())/1e3)
		errors += updateLedger(path)
		if useLock {
			if err := lock.Unlock(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "worker %d: unlock: %v\n", id, err)
				errors++
			}
		}
		if (i+1)*4/iterations != i*4/iterations { // each quarter
			fmt.Printf("  worker %d: %d/%d updates\n", id, i+1, iterations)
		}
	}

	report := bufio.NewWriter(os.NewFile(3, "report"))
	fmt.Fprintln(report, errors)
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
func (w *worker) finish() (errors int, waits []float64, err error) {
	defer w.report.Close()
	scanner := bufio.NewScanner(w.report)
	if scanner.Scan() {
		errors, _ = strconv.Atoi(scanner.Text())
	}
	for scanner.Scan() {
		wait, _ := strconv.ParseFloat(scanner.Text(), 64)
		waits = append(waits, wait)
	}
	io.Copy(io.Discard, w.report) // should the scanner stop early, the worker must not block on a full pipe
	return errors, waits, w.cmd.Wait()
}

// run runs the workers as separate processes and returns the number of errors seen.
func run(processes, iterations int, useLock bool) int {
	ledger, err := os.CreateTemp("", "redilock-demo-ledger")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ledger.Close()
	path := ledger.Name()
	defer os.Remove(path)
	writeLedger(path, "0 0")
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
	tornReads := 0
	var waits []float64
	for _, w := range workers {
		errors, workerWaits, err := w.finish()
		tornReads += errors
		waits = append(waits, workerWaits...)
		if err != nil {
			failedWorkers++
		}
	}
	elapsed := time.Since(start).Seconds()

	finalCount, valid := readLedger(path)
	total := processes * iterations
	lost := max(total-finalCount, 0)
	errors := tornReads + lost + failedWorkers
	if !valid {
		errors++
	}
	fmt.Printf("  summary: %d x %d = %d updates, errors: %d (torn reads %d, lost updates %d), %.0f updates/s",
		processes, iterations, total, errors, tornReads, lost, float64(total)/elapsed)
	if useLock && len(waits) > 0 {
		slices.Sort(waits)
		fmt.Printf(", lock wait p50 %.2f ms, p99 %.2f ms", waits[len(waits)/2], waits[len(waits)*99/100])
	}
	fmt.Printf("\n\n")
	return errors
}
