<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

/**
 * One running end-to-end stack (tests/harness/stack.js): a real redis-server,
 * the real gateway and real Socket.IO servers, driven over its control API.
 *
 * Stacks are started on first use, shared by the tests that ask for the same
 * gateway arguments, and stopped when PHPUnit exits (closing the stack's
 * stdin stops it and everything it started).
 */
final class Stack
{
    /** @var array<string, self> */
    private static array $running = [];

    /** @var resource */
    private $process;

    /** @var resource */
    private $stdin;

    public readonly string $control;
    public readonly string $grpc;
    public readonly string $redisUrl;

    /** @var list<int> */
    public readonly array $servers;

    private \CurlHandle $http;

    /** The file that receives the stack's stderr (harness and gateway logs). */
    public readonly string $log;

    /**
     * Returns the stack started with these arguments, starting it if needed.
     *
     * @param list<string> $gatewayArgs extra gateway arguments
     * @param list<string> $harnessArgs extra arguments of stack.js (e.g. `--adapter`, `streams`)
     */
    public static function get(array $gatewayArgs = [], array $harnessArgs = []): self
    {
        $key = implode("\0", $gatewayArgs) . "\1" . implode("\0", $harnessArgs);
        return self::$running[$key] ??= new self($gatewayArgs, $harnessArgs);
    }

    /**
     * Stops every stack (registered as a shutdown function).
     */
    public static function stopAll(): void
    {
        foreach (self::$running as $stack) {
            $stack->stop();
        }
        self::$running = [];
    }

    /**
     * The repository root.
     */
    public static function repo(): string
    {
        return dirname(__DIR__, 4);
    }

    /**
     * The gateway binary: $EMITGATE_BIN or <repo>/target/debug/emitgate.
     */
    public static function gatewayBin(): string
    {
        $bin = getenv('EMITGATE_BIN');
        if (!is_string($bin) || $bin === '') {
            $bin = self::repo() . '/target/debug/emitgate';
        }
        if (!is_file($bin) || !is_executable($bin)) {
            throw new \RuntimeException(
                "gateway binary not found at $bin: run `cargo build -p emitgate` or set EMITGATE_BIN"
            );
        }
        return $bin;
    }

    /**
     * @param list<string> $gatewayArgs
     * @param list<string> $harnessArgs
     */
    private function __construct(array $gatewayArgs, array $harnessArgs)
    {
        $cmd = ['node', self::repo() . '/tests/harness/stack.js', '--gateway', self::gatewayBin(), ...$harnessArgs];
        foreach ($gatewayArgs as $arg) {
            $cmd[] = '--gateway-arg=' . $arg;
        }
        $this->log = tempnam(sys_get_temp_dir(), 'emitgate-php-stack-');
        $process = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['file', $this->log, 'a']], $pipes);
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot start ' . implode(' ', $cmd));
        }
        $this->process = $process;
        $this->stdin = $pipes[0];
        $stdout = $pipes[1];
        $line = '';
        $deadline = microtime(true) + 60;
        while (!str_contains($line, "\n")) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                $this->stop();
                throw new \RuntimeException('the stack did not print its ready line within 60 s: ' . $this->logTail());
            }
            $read = [$stdout];
            $write = $except = null;
            if (stream_select($read, $write, $except, (int) $left, 0) === 0) {
                continue;
            }
            $chunk = fread($stdout, 8192);
            if ($chunk === '' || $chunk === false) {
                $this->stop();
                throw new \RuntimeException('the stack exited before it was ready: ' . $this->logTail());
            }
            $line .= $chunk;
        }
        $ready = json_decode(trim($line), true, 16, JSON_THROW_ON_ERROR);
        $this->control = $ready['control'];
        $this->grpc = $ready['grpc'];
        $this->redisUrl = $ready['redis_url'];
        $this->servers = $ready['servers'];
        $this->http = curl_init();
    }

    /**
     * The last lines of the stack's log.
     */
    public function logTail(int $lines = 40): string
    {
        $all = file($this->log, FILE_IGNORE_NEW_LINES) ?: [];
        return "log {$this->log}:\n" . implode("\n", array_slice($all, -$lines));
    }

    private function stop(): void
    {
        if (is_resource($this->stdin)) {
            fclose($this->stdin);
        }
        if (is_resource($this->process)) {
            proc_close($this->process);
        }
        if (getenv('EMITGATE_KEEP_LOGS') === false && is_file($this->log)) {
            unlink($this->log);
        }
    }

    /**
     * Calls the control API and decodes the JSON answer into arrays.
     *
     * @param array<string, mixed>|null $body a JSON body
     * @param int $status the answer's HTTP status, set on return
     * @return array<string, mixed> the JSON answer
     */
    public function request(string $method, string $path, ?array $body = null, ?int &$status = null): array
    {
        $decoded = json_decode($this->send($method, $path, $body, $status), true, 512, JSON_THROW_ON_ERROR);
        return is_array($decoded) ? $decoded : [];
    }

    /**
     * Calls the control API and returns the raw answer.
     *
     * @param array<string, mixed>|null $body a JSON body
     */
    private function send(string $method, string $path, ?array $body, ?int &$status): string
    {
        curl_setopt_array($this->http, [
            CURLOPT_URL => $this->control . $path,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => ['content-type: application/json'],
            CURLOPT_POSTFIELDS => $body === null ? '' : json_encode($body, JSON_THROW_ON_ERROR),
            CURLOPT_TIMEOUT => 60,
        ]);
        $answer = curl_exec($this->http);
        if (!is_string($answer)) {
            throw new \RuntimeException("control $method $path failed: " . curl_error($this->http));
        }
        $status = (int) curl_getinfo($this->http, CURLINFO_RESPONSE_CODE);
        return $answer;
    }

    /**
     * Reads a client's events, keeping JSON objects as stdClass so that `{}`
     * and `[]` stay apart.
     *
     * @return list<array{event: string, args: list<mixed>}>
     */
    private function decodeEvents(string $answer): array
    {
        $decoded = json_decode($answer, false, 512, JSON_THROW_ON_ERROR);
        $events = [];
        foreach ($decoded->events as $event) {
            $events[] = ['event' => $event->event, 'args' => $event->args];
        }
        return $events;
    }

    /**
     * Connects a real socket.io-client and waits until it has joined the rooms.
     *
     * @param list<string> $rooms
     * @return array{id: string, sid: string}
     */
    public function connect(string $namespace = '/', int $server = 0, array $rooms = []): array
    {
        $answer = $this->request('POST', '/clients', [
            'namespace' => $namespace,
            'server' => $server,
            'rooms' => $rooms,
        ], $status);
        if ($status !== 200) {
            throw new \RuntimeException('POST /clients answered ' . $status . ': ' . json_encode($answer));
        }
        return $answer;
    }

    /**
     * Waits until the client has received an event named $until ($count
     * times) and returns every event it received.
     *
     * @return list<array{event: string, args: list<mixed>}>
     */
    public function eventsUntil(string $id, string $until, int $count = 1, int $timeoutMs = 5000): array
    {
        $query = http_build_query(['until' => $until, 'count' => $count, 'timeout_ms' => $timeoutMs]);
        $answer = $this->send('GET', "/clients/$id/events?$query", null, $status);
        if ($status !== 200) {
            throw new \RuntimeException("client $id did not receive \"$until\" x$count: " . $answer);
        }
        return $this->decodeEvents($answer);
    }

    /**
     * Returns every event the client has received so far, without waiting.
     *
     * @return list<array{event: string, args: list<mixed>}>
     */
    public function events(string $id): array
    {
        return $this->decodeEvents($this->send('GET', "/clients/$id/events", null, $status));
    }

    /**
     * Waits until the client is disconnected and returns the reason, or null
     * when it is still connected after the timeout.
     */
    public function disconnectReason(string $id, int $timeoutMs = 5000): ?string
    {
        return $this->request('GET', "/clients/$id/disconnect?timeout_ms=$timeoutMs")['reason'];
    }

    /**
     * The socket's rooms as its server sees them.
     *
     * @return list<string>
     */
    public function rooms(string $id): array
    {
        $rooms = $this->request('GET', "/clients/$id/rooms")['rooms'];
        sort($rooms);
        return $rooms;
    }

    /**
     * Registers a server-side handler on every server.
     */
    public function listen(string $namespace, string $event): void
    {
        $this->request('POST', '/listen', ['namespace' => $namespace, 'event' => $event]);
    }

    /**
     * Waits for $count server-side events.
     *
     * @return list<array{server: int, args: list<mixed>}>
     */
    public function serverEvents(string $namespace, string $event, int $count, int $timeoutMs = 5000): array
    {
        $query = http_build_query([
            'namespace' => $namespace,
            'event' => $event,
            'count' => $count,
            'timeout_ms' => $timeoutMs,
        ]);
        $answer = $this->send('GET', "/server-events?$query", null, $status);
        if ($status !== 200) {
            throw new \RuntimeException("servers did not receive \"$event\" x$count: " . $answer);
        }
        $events = [];
        foreach (json_decode($answer, false, 512, JSON_THROW_ON_ERROR)->events as $event) {
            $events[] = ['server' => $event->server, 'args' => $event->args];
        }
        return $events;
    }

    /**
     * Disconnects every client and forgets listeners.
     */
    public function reset(): void
    {
        $this->request('POST', '/reset', []);
    }

    /**
     * The errors the Socket.IO servers recorded (malformed messages and the like).
     *
     * @return list<array<string, mixed>>
     */
    public function errors(): array
    {
        return $this->request('GET', '/errors')['errors'];
    }
}
