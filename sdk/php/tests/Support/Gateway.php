<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

/**
 * A gateway process of its own on a fixed port, which a test stops and
 * starts again (the stacks' gateways live as long as their stack).
 */
final class Gateway
{
    /** How long a start may take before the test fails, in seconds. */
    private const START_TIMEOUT = 30.0;

    /** @var resource|null */
    private $process = null;

    private string $log;

    private function __construct(public readonly string $address, private readonly string $redisUrl)
    {
        $this->log = tempnam(sys_get_temp_dir(), 'emitgate-php-gateway-');
    }

    /**
     * Starts a gateway on a free port and waits until it accepts connections.
     *
     * @param string $redisUrl the Redis it publishes to
     */
    public static function start(string $redisUrl): self
    {
        $probe = stream_socket_server('tcp://127.0.0.1:0');
        $address = (string) stream_socket_get_name($probe, false);
        fclose($probe);
        $gateway = new self($address, $redisUrl);
        $gateway->spawn(0.0);
        $gateway->waitUntilListening();
        return $gateway;
    }

    /**
     * Starts the stopped gateway again after $delay seconds, without waiting:
     * the caller goes on while it comes up.
     *
     * @param float $delay seconds before the process starts
     */
    public function restartAfter(float $delay): void
    {
        $this->spawn($delay);
    }

    /**
     * Stops the gateway (SIGKILL: it goes away at once, like a crash).
     */
    public function stop(): void
    {
        if ($this->process !== null) {
            proc_terminate($this->process, 9);
            proc_close($this->process);
            $this->process = null;
        }
    }

    private function spawn(float $delay): void
    {
        $cmd = [
            'sh', '-c', 'sleep "$0"; exec "$@"', sprintf('%.3f', $delay),
            Stack::gatewayBin(), '--listen', $this->address, '--redis-url', $this->redisUrl,
            // Several gateways may run at once: an admin listener on a free
            // port each, never the default 9090 another process may hold.
            '--admin-listen', '127.0.0.1:0',
        ];
        $process = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $this->log, 'a'],
            2 => ['file', $this->log, 'a']], $pipes);
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot start the gateway');
        }
        $this->process = $process;
    }

    /**
     * Polls the port until the gateway accepts a connection.
     */
    private function waitUntilListening(): void
    {
        $deadline = microtime(true) + self::START_TIMEOUT;
        while (microtime(true) < $deadline) {
            $socket = @stream_socket_client('tcp://' . $this->address, $errno, $error, 1.0);
            if ($socket !== false) {
                fclose($socket);
                return;
            }
            usleep(20_000);
        }
        throw new \RuntimeException("the gateway did not listen on {$this->address}: " . file_get_contents($this->log));
    }
}
