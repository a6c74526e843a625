# frozen_string_literal: true

require "pathname"
require "tmpdir"
require_relative "test_helper"

# rediss:// and the TLS keywords. The round trips use the TLS-only server of
# `tests/harness/with-redis --tls` (REDIS_TLS_URL, and the files made for it in REDIS_TLS_*);
# the arguments need no server.
class TLSTest < Minitest::Test
  include RedilockTestHelper

  NOWHERE = "rediss://127.0.0.1:1" # Client.new does no I/O

  # The library reads the files in Client.new and names the one it cannot use.
  def test_files_the_library_cannot_use_raise_argument_error_naming_them
    Dir.mktmpdir do |dir|
      missing = File.join(dir, "missing.pem")
      not_pem = File.join(dir, "not-pem.txt")
      File.write(not_pem, "not a certificate\n")
      {
        { tls_ca_file: missing } => /TLS CA file #{missing} cannot be read/,
        { tls_ca_file: Pathname(not_pem) } => /TLS CA file #{not_pem} holds no PEM certificate/,
        { tls_client_cert: missing, tls_client_key: not_pem } => /client certificate file #{missing} cannot be read/
      }.each do |options, message|
        assert_match message, assert_raises(ArgumentError) { Redilock::Client.new(NOWHERE, **options) }.message
      end
      assert_match(/not rediss:/, assert_raises(ArgumentError) { Redilock::Client.new(@url, tls_ca_file: not_pem) }.message)
    end
  end

  def test_the_client_certificate_and_its_key_go_together
    [{ tls_client_cert: "client.pem" }, { tls_client_key: "client.key" }].each do |options|
      error = assert_raises(ArgumentError) { Redilock::Client.new(NOWHERE, **options) }
      assert_match(/tls_client_cert: and tls_client_key: go together/, error.message)
    end
    assert_match(/tls_ca_file must be a String, not Integer/,
                 assert_raises(ArgumentError) { Redilock::Client.new(NOWHERE, tls_ca_file: 42) }.message)
    assert_match(/tls_ca_file must not contain a NUL/,
                 assert_raises(ArgumentError) { Redilock::Client.new(NOWHERE, tls_ca_file: "ca\0.pem") }.message)
  end

  def test_lock_and_unlock_over_tls_with_the_ca_file
    assert_lock_round_trip(new_client(tls_url, tls_ca_file: tls_file("CA")))
  end

  # The server asks for a client certificate without requiring one: it is sent and accepted.
  def test_mutual_tls
    client = new_client(tls_url, tls_ca_file: Pathname(tls_file("CA")), tls_client_cert: tls_file("CLIENT_CERT"),
                                 tls_client_key: tls_file("CLIENT_KEY"))
    assert_lock_round_trip(client)
    error = assert_raises(ArgumentError) do
      Redilock::Client.new(tls_url, tls_client_cert: tls_file("CLIENT_CERT"), tls_client_key: tls_file("CA"))
    end
    assert_includes error.message, tls_file("CA"), "a certificate given as the key is named"
  end

  # Without a CA file the system's roots verify the server: they do not know the test CA.
  def test_the_system_roots_refuse_the_test_servers_certificate
    client = new_client(tls_url)
    name = unique_name
    error = assert_raises(Redilock::TLSError) { client.lock(name, timeout: 0) }
    assert_equal Redilock::Native::STATUS_TLS, error.status
    assert_match(/certificate/, error.message)
    assert_raises(Redilock::TLSError) { client.ping }
    assert_lock_round_trip(new_client(tls_url, tls_ca_file: tls_file("CA")), name) # nothing was left held
  end

  # #insecure encrypts without verifying the server: tests only.
  def test_insecure_skips_verification
    assert_lock_round_trip(new_client("#{tls_url}#insecure"))
  end

  private

  def tls_url
    ENV.fetch("REDIS_TLS_URL") do
      skip "REDIS_TLS_URL is not set: run through tests/harness/with-redis --tls, as make test-ruby does"
    end
  end

  # REDIS_TLS_<what>: a file the harness made for its TLS server.
  def tls_file(what)
    ENV.fetch("REDIS_TLS_#{what}")
  end

  # The lock is taken on the server (a second client finds it held) and given back.
  def assert_lock_round_trip(client, name = unique_name)
    observer = new_client(tls_url, tls_ca_file: tls_file("CA"))
    fence = client.synchronize(name) do |lock|
      assert_nil observer.try_lock(name), "the lock is held on the TLS server"
      lock.fence
    end
    assert_operator observer.synchronize(name, &:fence), :>, fence
  end
end
