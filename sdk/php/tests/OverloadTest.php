<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Code;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\Tests\Support\BlackHole;
use Emitgate\Tests\Support\EndToEndTestCase;
use Emitgate\Tests\Support\TempDir;

/**
 * A gateway that takes one call at a time (`[limits] max_in_flight = 1`):
 * while a call hangs on a Redis that never answers, the next is shed with
 * RESOURCE_EXHAUSTED and a retry delay.
 */
final class OverloadTest extends EndToEndTestCase
{
    private const REDIS_TIMEOUT_MS = 1500;

    /** @var list<string>|null */
    private static ?array $args = null;

    protected static function gatewayArgs(): array
    {
        if (self::$args !== null) {
            return self::$args;
        }
        $port = BlackHole::port();
        $timeout = self::REDIS_TIMEOUT_MS;
        return self::$args = ['--config', TempDir::write('overload.toml', <<<TOML
            [limits]
            max_in_flight = 1

            [redis]
            timeout_ms = $timeout

            [[targets]]
            name = "stalled"
            redis_url = "redis://127.0.0.1:$port"

            TOML)];
    }

    public function testACallOverTheInFlightLimitIsShedWithARetryDelay(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $held = $this->holdACall();
        $deadline = microtime(true) + 5;
        $shed = null;
        $published = 0;
        while ($shed === null) {
            $this->assertLessThan($deadline, microtime(true), 'no call was shed');
            $status = proc_get_status($held['process']);
            if (!$status['running']) {
                // The held call lost the only permit to one of ours: hold another.
                $this->assertSame('RESOURCE_EXHAUSTED', $this->finish($held));
                $held = $this->holdACall();
                continue;
            }
            try {
                $this->io->to('r1')->emit('probe');
                $published++;
            } catch (ResourceExhaustedException $e) {
                $shed = $e;
            }
        }

        $this->assertSame(Code::RESOURCE_EXHAUSTED, $shed->getStatusCode());
        $this->assertFalse($shed->isLocal());
        $this->assertTrue($shed->isRetryable());
        $this->assertStringContainsString('limit of 1 calls in flight', $shed->getStatusMessage());
        $this->assertGreaterThan(0.0, $shed->getRetryDelay());

        // The held call ends with the Redis timeout, and gives its permit back.
        $this->assertSame('UNAVAILABLE', $this->finish($held));
        $this->assertSame(2, $this->io->to('r1')->emit('after')->receivers);
        $this->assertSame(
            array_merge(array_fill(0, $published, 'probe'), ['after']),
            $this->barrier([$a['id']])[$a['id']]
        );
    }

    /**
     * Starts a PHP process whose call hangs on the stalled target.
     *
     * @return array{process: resource, stdout: resource, stderr: resource}
     */
    private function holdACall(): array
    {
        $code = 'require $argv[1];'
            . '$io = new Emitgate\Client($argv[2], timeout: 10.0);'
            . 'try { $io->target("stalled")->to("r1")->emit("held"); echo "OK"; }'
            . ' catch (Emitgate\Exception\EmitgateException $e) { echo $e->getStatusCode()->name; }';
        $process = proc_open(
            [PHP_BINARY, '-r', $code, dirname(__DIR__) . '/autoload.php', $this->stack->grpc],
            [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
            $pipes
        );
        $this->assertIsResource($process);
        return ['process' => $process, 'stdout' => $pipes[1], 'stderr' => $pipes[2]];
    }

    /**
     * Waits for the held call to end and returns its status name.
     *
     * @param array{process: resource, stdout: resource, stderr: resource} $held
     */
    private function finish(array $held): string
    {
        $out = (string) stream_get_contents($held['stdout']);
        $err = (string) stream_get_contents($held['stderr']);
        fclose($held['stdout']);
        fclose($held['stderr']);
        proc_close($held['process']);
        $this->assertSame('', $err);
        return $out;
    }
}
