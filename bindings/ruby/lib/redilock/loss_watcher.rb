# frozen_string_literal: true

module Redilock
  # Runs the `on_lost:` callbacks of one client's auto-renewed locks, on a Ruby thread of its
  # own that lives only while such a lock is held.
  #
  # The native library can report a loss through a C callback, but it calls it from a native
  # thread of its own, and Ruby code run from there (an FFI::Function) is fragile: with ffi
  # 1.15 it never runs in a forked child (the gem's dispatcher thread is gone there), and it
  # races garbage collection and interpreter exit. So this thread asks instead: every
  # POLL_INTERVAL it calls redilock_renewal_lost (no I/O) for each watched lock. A loss is
  # seen within POLL_INTERVAL of the library knowing it, which takes up to a third of the TTL.
  #
  # @api private
  class LossWatcher
    POLL_INTERVAL = 0.05

    def initialize
      @guard = Mutex.new
      @callbacks = {}.compare_by_identity
      @thread = nil
    end

    # Calls `on_lost` with the lock once if it is lost before {Lock#unlock}.
    #
    # @param lock [Lock] an auto-renewed lock
    # @param on_lost [#call]
    def watch(lock, on_lost)
      @guard.synchronize do
        @callbacks[lock] = on_lost
        @thread ||= Thread.new { run }.tap { |thread| thread.name = "redilock loss watcher" }
      end
    end

    private

    def run
      loop do
        sleep POLL_INTERVAL
        finished = @guard.synchronize { @callbacks.to_a }.select { |lock, on_lost| finished?(lock, on_lost) }
        @guard.synchronize do
          finished.each { |lock, _| @callbacks.delete(lock) }
          if @callbacks.empty?
            @thread = nil
            return
          end
        end
      end
    end

    # Whether the lock needs no more watching: lost and reported, or unlocked. A loss found
    # by the unlock itself is reported too.
    def finished?(lock, on_lost)
      unlocked = lock.unlocked? # read first: once unlocked, lost? is final
      return unlocked unless lock.lost?

      report(lock, on_lost)
      true
    rescue Error # the client was closed: its renewals ended with it
      true
    end

    def report(lock, on_lost)
      on_lost.call(lock)
    rescue StandardError => e # one failing callback must not silence the others
      warn "redilock: the on_lost callback of lock '#{lock.name}' raised #{e.class}: #{e.message}"
    end
  end
end
