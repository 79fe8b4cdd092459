<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * socketsJoin, socketsLeave, disconnectSockets and serverSideEmit against
 * real Socket.IO servers.
 */
final class OperationsTest extends EndToEndTestCase
{
    public function testSocketsJoinMakesTheSelectedSocketsJoin(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r1', 'vip']);
        $c = $this->stack->connect('/', 1, ['r2']);

        $result = $this->io->to('r1')->except('vip')->socketsJoin(['joined', 'also']);
        $this->assertSame(2, $result->receivers);
        $this->io->to('joined')->emit('to-joined');

        $seen = $this->barrier([$a['id'], $b['id'], $c['id']]);
        $this->assertSame(['to-joined'], $seen[$a['id']]);
        $this->assertSame([], $seen[$b['id']]);
        $this->assertSame([], $seen[$c['id']]);
        $this->assertSame($this->sorted([$a['sid'], 'also', 'joined', 'r1']), $this->sorted($this->roomsOf($a)));
        $this->assertSame($this->sorted([$b['sid'], 'r1', 'vip']), $this->sorted($this->roomsOf($b)));
    }

    public function testSocketsJoinWithoutRoomsSelectsTheWholeNamespace(): void
    {
        $a = $this->stack->connect('/', 0);
        $b = $this->stack->connect('/', 1);
        $admin = $this->stack->connect('/admin', 0);

        $this->io->socketsJoin('everyone');
        $this->io->to('everyone')->emit('hi');

        $seen = $this->barrier([$a['id'], $b['id']]);
        $this->assertSame(['hi'], $seen[$a['id']]);
        $this->assertSame(['hi'], $seen[$b['id']]);
        $this->assertNotContains('everyone', $this->roomsOf($admin));
    }

    public function testSocketsLeaveMakesTheSelectedSocketsLeave(): void
    {
        $a = $this->stack->connect('/', 0, ['r1', 'news']);
        $b = $this->stack->connect('/', 1, ['r2', 'news']);

        $result = $this->io->in('r1')->socketsLeave('news');
        $this->assertSame(2, $result->receivers);
        $this->io->to('news')->emit('headline');

        $seen = $this->barrier([$a['id'], $b['id']]);
        $this->assertSame([], $seen[$a['id']]);
        $this->assertSame(['headline'], $seen[$b['id']]);
        $this->assertNotContains('news', $this->roomsOf($a));
    }

    public function testDisconnectSocketsDisconnectsTheSelectedSockets(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r1']);
        $c = $this->stack->connect('/', 1, ['r2']);

        $result = $this->io->to('r1')->disconnectSockets();

        $this->assertSame(2, $result->receivers);
        $this->assertSame('io server disconnect', $this->stack->disconnectReason($a['id']));
        $this->assertSame('io server disconnect', $this->stack->disconnectReason($b['id']));
        $this->assertSame([], $this->barrier([$c['id']])[$c['id']]);
        $this->assertTrue($this->stack->request('GET', '/clients/' . $c['id'])['connected']);
    }

    public function testDisconnectSocketsWithCloseInANamespace(): void
    {
        $admin = $this->stack->connect('/admin', 0, ['r1']);
        $root = $this->stack->connect('/', 0, ['r1']);

        $this->io->of('/admin')->to('r1')->disconnectSockets(true);

        $this->assertSame('io server disconnect', $this->stack->disconnectReason($admin['id']));
        $this->assertSame([], $this->barrier([$root['id']])[$root['id']]);
        $this->assertTrue($this->stack->request('GET', '/clients/' . $root['id'])['connected']);
    }

    public function testServerSideEmitReachesTheServersHandlers(): void
    {
        $this->stack->listen('/', 'sync');
        $this->stack->listen('/admin', 'sync');

        $result = $this->io->serverSideEmit('sync', 'cache', ['keys' => ['a', 'é']], 42);
        $this->io->of('/admin')->serverSideEmit('sync', 'admin');

        $this->assertSame(2, $result->receivers);
        $events = $this->stack->serverEvents('/', 'sync', 2);
        $this->assertEqualsCanonicalizing([0, 1], array_column($events, 'server'));
        foreach ($events as $event) {
            $this->assertEquals(['cache', (object) ['keys' => ['a', 'é']], 42], $event['args']);
        }
        $admin = $this->stack->serverEvents('/admin', 'sync', 2);
        $this->assertSame([['admin'], ['admin']], array_column($admin, 'args'));
    }

    public function testServerSideEmitRefusesBinaryArguments(): void
    {
        // The socketio dialect sends server requests as JSON: the gateway
        // refuses bytes anywhere in an argument.
        $cases = [
            'args[1]' => fn () => $this->io->serverSideEmit('sync', 'ok', new Binary("\x01")),
            'args[0]' => fn () => $this->io->serverSideEmit('sync', ['file' => new Binary("\x02")]),
        ];
        foreach ($cases as $field => $call) {
            try {
                $call();
                $this->fail('expected INVALID_ARGUMENT');
            } catch (InvalidArgumentException $e) {
                $this->assertFalse($e->isLocal(), 'the gateway answers this one');
                $this->assertSame([$field], $e->getFields());
                $this->assertStringContainsString('binary', $e->getFieldViolations()[0]->description);
            }
        }
    }

    public function testServerSideEmitAndBroadcastRefuseRoomsLocally(): void
    {
        foreach (
            [
                'rooms' => fn () => $this->io->to('r1')->serverSideEmit('x'),
                'except_rooms' => fn () => $this->io->except('r1')->serverSideEmit('x'),
                'rooms ' => fn () => $this->io->to('r1')->broadcast('x'),
            ] as $field => $call
        ) {
            try {
                $call();
                $this->fail("expected a local error on $field");
            } catch (InvalidArgumentException $e) {
                $this->assertTrue($e->isLocal());
                $this->assertSame([trim($field)], $e->getFields());
            }
        }
    }

    /**
     * @param array{id: string, sid: string} $client
     * @return list<string>
     */
    private function roomsOf(array $client): array
    {
        return $this->stack->rooms($client['id']);
    }

    /**
     * @param list<string> $rooms
     * @return list<string>
     */
    private function sorted(array $rooms): array
    {
        $rooms = array_values(array_unique($rooms));
        sort($rooms);
        return $rooms;
    }
}
