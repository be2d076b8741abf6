import { describe, expect, it } from 'vitest';
import { parseRate, parseSizeBytes, readServeConfig } from '../../engine/daemon/config.js';
import { thrown } from '../support/errors.js';

describe('serve configuration', () => {
  it('defaults to port 8080 on every interface, 1 MiB bodies, 100/s per sender, 30 days of retention', () => {
    const config = readServeConfig({}, [], {}, '/tmp');
    expect(config).toMatchObject({ paths: ['integrations'], port: 8080, host: '0.0.0.0', maxBodyBytes: 1024 * 1024, inboundRate: { requests: 100, perMs: 1000, burst: 200 }, retentionMs: 30 * 86_400_000, logLevel: 'info', drainTimeoutMs: 10_000, sandbox: false, trustProxy: false });
  });

  it('reads every setting from the environment, and flags win over it', () => {
    const env = { PORT: '9090', PATCHBAY_HOST: '127.0.0.2', PATCHBAY_DIR: 'manifests', PATCHBAY_MAX_BODY: '2mb', PATCHBAY_INBOUND_RATE: '6000/1m,burst=500', PATCHBAY_RETENTION: 'off', PATCHBAY_LOG_LEVEL: 'debug', PATCHBAY_LOG_FORMAT: 'json', PATCHBAY_DRAIN_TIMEOUT: '30s', PATCHBAY_PUBLIC_URL: 'https://hooks.example.com/pb', PATCHBAY_TRUST_PROXY: '1', PATCHBAY_PROXY_HOPS: '2' };
    const fromEnv = readServeConfig({}, [], env, '/tmp');
    expect(fromEnv).toMatchObject({ paths: ['manifests'], port: 9090, host: '127.0.0.2', maxBodyBytes: 2 * 1024 * 1024, inboundRate: { requests: 6000, perMs: 60_000, burst: 500 }, retentionMs: undefined, logLevel: 'debug', logFormat: 'json', drainTimeoutMs: 30_000, trustProxy: true, proxyHops: 2 });
    expect(fromEnv.publicUrl?.href).toBe('https://hooks.example.com/pb');
    const flagged = readServeConfig({ port: '0', dir: ['a', 'b'], 'max-body': '64kb' }, [], env, '/tmp');
    expect(flagged).toMatchObject({ port: 0, paths: ['a', 'b'], maxBodyBytes: 64 * 1024 });
  });

  it('listens on loopback only in sandbox mode unless told otherwise', () => {
    expect(readServeConfig({ sandbox: true }, [], {}, '/tmp').host).toBe('127.0.0.1');
    expect(readServeConfig({}, [], { PATCHBAY_SANDBOX: '1' }, '/tmp').sandbox).toBe(true);
  });

  it('refuses values it cannot use, naming the flag or the variable', () => {
    expect(thrown(() => readServeConfig({}, [], { PORT: '80x' }, '/tmp')).message).toMatch(/^PORT must be a port number/);
    expect(thrown(() => readServeConfig({ port: '70000' }, [], {}, '/tmp')).message).toMatch(/^--port must be/);
    expect(thrown(() => readServeConfig({}, [], { PATCHBAY_MAX_BODY: '1tb' }, '/tmp')).code).toBe('PB_DAEMON_BAD_CONFIG');
    expect(thrown(() => readServeConfig({ 'inbound-rate': 'lots' }, [], {}, '/tmp')).message).toMatch(/^--inbound-rate must be a rate/);
    expect(thrown(() => readServeConfig({}, [], { PATCHBAY_RETENTION: '10s' }, '/tmp')).message).toMatch(/^PATCHBAY_RETENTION must be a duration of at least 1m/);
    expect(thrown(() => readServeConfig({ 'tls-cert': 'cert.pem' }, [], {}, '/tmp')).message).toMatch(/go together/);
    expect(thrown(() => readServeConfig({ 'tls-cert': '/nonexistent/c.pem', 'tls-key': '/nonexistent/k.pem' }, [], {}, '/tmp')).message).toMatch(/cannot read \/nonexistent\/c\.pem \(ENOENT\)/);
    expect(thrown(() => readServeConfig({}, [], { PATCHBAY_PUBLIC_URL: 'https://user:pw@example.com/?a=1' }, '/tmp')).message).not.toContain('pw');
    expect(thrown(() => readServeConfig({ 'log-level': 'loud' }, [], {}, '/tmp')).message).toMatch(/debug, info, warn, error/);
    expect(thrown(() => readServeConfig({}, [], { PATCHBAY_PROXY_HOPS: '0' }, '/tmp')).message).toMatch(/^PATCHBAY_PROXY_HOPS must be a number of proxies/);
  });

  it('parses sizes and rates', () => {
    expect(parseSizeBytes('1048576')).toBe(1_048_576);
    expect(parseSizeBytes('512KiB')).toBe(524_288);
    expect(parseSizeBytes('1.5mb')).toBe(1_572_864);
    expect(parseSizeBytes('ten')).toBeUndefined();
    expect(parseRate('100/s')).toEqual({ requests: 100, perMs: 1000, burst: 200 });
    expect(parseRate('10/5m,burst=3')).toEqual({ requests: 10, perMs: 300_000, burst: 3 });
    expect(parseRate('0/s')).toBeUndefined();
    expect(parseRate('100')).toBeUndefined();
  });
});
