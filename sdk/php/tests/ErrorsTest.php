<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Client;
use Emitgate\Code;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\NotFoundException;
use Emitgate\Exception\UnavailableException;
use Emitgate\RawJson;
use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * Errors answered by the real gateway, and those the SDK raises before
 * sending. In every case nothing is delivered.
 */
final class ErrorsTest extends EndToEndTestCase
{
    public function testEveryInvalidFieldIsReported(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        $e = $this->invalid(fn () => $this->io->to(['r1', 'ok', ''])->except('')->emit(''));

        $this->assertFalse($e->isLocal());
        $this->assertSame(3, $e->getCode());
        $this->assertSame(['event', 'rooms[2]', 'except_rooms[0]'], $e->getFields());
        foreach ($e->getFieldViolations() as $violation) {
            $this->assertNotSame('', $violation->description);
        }
        $this->assertStringStartsWith('INVALID_ARGUMENT: ', $e->getMessage());
        $this->assertFalse($e->isRetryable());
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    public function testAReservedEventNameIsRefused(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $reserved = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'];
        foreach ($reserved as $event) {
            $e = $this->invalid(fn () => $this->io->to('r1')->emit($event));
            $this->assertSame(['event'], $e->getFields(), $event);
            $this->assertStringContainsString($event, $e->getStatusMessage());
        }
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
        $this->assertTrue($this->stack->request('GET', '/clients/' . $a['id'])['connected']);
    }

    public function testAnEmitWithoutRoomsIsRefused(): void
    {
        $e = $this->invalid(fn () => $this->io->emit('everyone?'));

        $this->assertSame(['rooms'], $e->getFields());
    }

    public function testInvalidRawJsonIsRefusedByTheGateway(): void
    {
        $e = $this->invalid(fn () => $this->io->to('r1')->emit('x', 1, new RawJson('{"unterminated": ')));

        $this->assertFalse($e->isLocal());
        $this->assertSame(['args[1].json'], $e->getFields());
    }

    public function testJoinAndLeaveNeedRooms(): void
    {
        $this->assertSame(['join_rooms'], $this->invalid(fn () => $this->io->socketsJoin([]))->getFields());
        $this->assertSame(['leave_rooms'], $this->invalid(fn () => $this->io->socketsLeave([]))->getFields());
    }

    public function testAnUnknownTargetIsNotFound(): void
    {
        try {
            $this->io->target('nowhere')->to('r1')->emit('x');
            $this->fail('expected NOT_FOUND');
        } catch (NotFoundException $e) {
            $this->assertSame(Code::NOT_FOUND, $e->getStatusCode());
            $this->assertFalse($e->isLocal());
            $this->assertStringContainsString('nowhere', $e->getStatusMessage());
        }
    }

    public function testAClosedPortIsUnavailable(): void
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        $address = stream_socket_get_name($socket, false);
        fclose($socket);
        $io = new Client((string) $address, connectTimeout: 2.0);

        try {
            $io->to('r1')->emit('x');
            $this->fail('expected UNAVAILABLE');
        } catch (UnavailableException $e) {
            $this->assertTrue($e->isLocal());
            $this->assertTrue($e->isRetryable());
            $this->assertStringContainsString((string) $address, $e->getMessage());
        }
    }

    public function testArgumentsTheSdkCannotEncodeAreRefusedBeforeSending(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $r1 = $this->io->to('r1');
        $resource = fopen('php://memory', 'r');
        $cases = [
            'args[0]' => fn () => $r1->emit('x', NAN),
            'args[1]' => fn () => $r1->emit('x', 1, INF),
            'args[0].deep[1]' => fn () => $r1->emit('x', ['deep' => [1, -INF]]),
            'args[2]' => fn () => $r1->emit('x', 'ok', 'ok', "\xff\xfe not utf-8"),
            'args[0].k' => fn () => $r1->emit('x', ['k' => $resource]),
            'args[3]' => fn () => $r1->emit('x', 1, 2, 3, static fn () => 1),
            'event' => fn () => $r1->emit("bad \xc3"),
            'rooms' => fn () => $this->io->to("\xe2\x82")->emit('x'),
            'namespace' => fn () => $this->io->of("/\xff")->broadcast('x'),
            'join_rooms' => fn () => $this->io->socketsJoin([['nested'], 1]),
        ];
        foreach ($cases as $field => $call) {
            $e = $this->invalid($call);
            $this->assertTrue($e->isLocal(), $field);
            $this->assertSame([$field], $e->getFields(), $field);
        }
        fclose($resource);
        $this->assertSame([], $this->barrier([$a['id']])[$a['id']]);
    }

    /**
     * Runs a call that must fail with INVALID_ARGUMENT.
     */
    private function invalid(callable $call): InvalidArgumentException
    {
        try {
            $call();
        } catch (InvalidArgumentException $e) {
            $this->assertSame(Code::INVALID_ARGUMENT, $e->getStatusCode());
            return $e;
        } catch (EmitgateException $e) {
            $this->fail('expected INVALID_ARGUMENT, got ' . $e->getMessage());
        }
        $this->fail('expected INVALID_ARGUMENT, the call succeeded');
    }
}
