<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\AckResult;
use Emitgate\Binary;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Internal\Replies;
use Emitgate\Proto\V1\Argument;
use Emitgate\ServerAckResult;
use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * emitWithAck, fetchSockets, allRooms, serverCount and serverSideEmitWithAck
 * against real Socket.IO servers whose clients ack as the harness tells them.
 */
final class FeedbackTest extends EndToEndTestCase
{
    /**
     * Connects a client with the control API's other fields: `ack`
     * (['reply' => v] or 'never'), `data` (socket.data), `auth`, `headers`.
     *
     * @param list<string> $rooms
     * @param array<string, mixed> $extra
     * @return array{id: string, sid: string}
     */
    private function connectWith(int $server, array $rooms, array $extra = []): array
    {
        $body = ['namespace' => '/', 'server' => $server, 'rooms' => $rooms] + $extra;
        $answer = $this->stack->request('POST', '/clients', $body, $status);
        $this->assertSame(200, $status, json_encode($answer) ?: '');
        return $answer;
    }

    /**
     * Registers handlers; those of $servers call the callback with $reply.
     *
     * @param list<int> $servers
     */
    private function listenReplying(string $event, mixed $reply, array $servers): void
    {
        $body = ['namespace' => '/', 'event' => $event, 'servers' => $servers];
        if ($reply !== null) {
            $body['reply'] = $reply;
        }
        $this->stack->request('POST', '/listen', $body, $status);
        $this->assertSame(200, $status);
    }

    /**
     * @param list<string> $names
     * @return list<string>
     */
    private function sorted(array $names): array
    {
        sort($names);
        return $names;
    }

    /**
     * @param list<mixed> $values
     * @return list<string>
     */
    private static function canonical(array $values): array
    {
        $ksort = static function (mixed $v) use (&$ksort): mixed {
            if (is_array($v)) {
                ksort($v);
                return array_map($ksort, $v);
            }
            return $v;
        };
        $out = array_map(static fn ($v): string => serialize($ksort($v)), $values);
        sort($out);
        return $out;
    }

    public function testEmitWithAckGathersValuesBinaryAndNestedBinary(): void
    {
        $this->connectWith(0, ['r'], ['ack' => ['reply' => ['ok' => true, 'n' => 7, 'x' => 1.5]]]);
        $this->connectWith(1, ['r'], ['ack' => ['reply' => self::bin("\x01\x02\x03")]]);
        $this->connectWith(1, ['r'], ['ack' => ['reply' => ['file' => self::bin("\x09"), 'name' => 'x']]]);
        $outside = $this->connectWith(0, ['other'], ['ack' => ['reply' => 'wrong']]);

        $r = $this->io->timeout(5)->to('r')->emitWithAck('question', 'q1');

        $this->assertTrue($r->complete);
        $this->assertSame([3, 2, 2], [$r->sockets, $r->servers, $r->serversExpected]);
        $this->assertSame(self::canonical([
            ['ok' => true, 'n' => 7, 'x' => 1.5],
            new Binary("\x01\x02\x03"),
            ['file' => new Binary("\x09"), 'name' => 'x'],
        ]), self::canonical($r->acks));
        $this->assertSame([], $this->barrier([$outside['id']])[$outside['id']]);
    }

    public function testAClientThatNeverAcksMakesItIncomplete(): void
    {
        $this->connectWith(0, [], ['ack' => ['reply' => 1]]);
        $this->connectWith(1, [], ['ack' => 'never']);

        $started = microtime(true);
        $r = $this->io->timeout(0.6)->emitWithAck('poll'); // no room: every socket
        $elapsed = microtime(true) - $started;

        $this->assertFalse($r->complete);
        $this->assertSame([1], $r->acks);
        $this->assertSame([2, 2, 2], [$r->sockets, $r->servers, $r->serversExpected]);
        $this->assertGreaterThanOrEqual(0.5, $elapsed);
        $this->assertLessThan(5, $elapsed);
    }

    public function testANamespaceWithoutSocketsIsCompleteAtOnce(): void
    {
        $started = microtime(true);
        $r = $this->io->emitWithAck('nobody');
        $this->assertEquals(new AckResult(0, [], 2, 2, true), $r);
        $this->assertLessThan(2, microtime(true) - $started, 'answered by the servers, not by the timeout');
    }

    public function testFetchSocketsOfARoomANamespaceAndWithExcept(): void
    {
        $a = $this->connectWith(0, ['r', 'vip'], [
            'data' => ['user' => 'u1', 'n' => 3],
            'auth' => ['token' => 'secret-token'],
            'headers' => ['cookie' => 'session=secret', 'authorization' => 'Bearer secret', 'x-app' => 'demo'],
        ]);
        $b = $this->connectWith(1, ['r']);
        $c = $this->connectWith(1, ['elsewhere']);
        $ids = static function (array $sockets): array {
            $out = array_map(static fn ($s): string => $s->id, $sockets);
            sort($out);
            return $out;
        };

        $r = $this->io->in('r')->fetchSockets();

        $this->assertTrue($r->complete);
        $this->assertFalse($r->truncated);
        $this->assertSame([2, 2], [$r->servers, $r->serversExpected]);
        $this->assertSame($this->sorted([$a['sid'], $b['sid']]), $ids($r->sockets));
        [$sa] = array_values(array_filter($r->sockets, static fn ($s): bool => $s->id === $a['sid']));
        $this->assertSame($this->sorted([$a['sid'], 'r', 'vip']), $this->sorted($sa->rooms));
        $this->assertEquals(['user' => 'u1', 'n' => 3], $sa->data); // a JSON object: no key order
        $this->assertIsInt($sa->data['n']);
        $this->assertSame('demo', $sa->handshake->headers['x-app'] ?? null);
        $this->assertArrayNotHasKey('cookie', $sa->handshake->headers);
        $this->assertArrayNotHasKey('authorization', $sa->handshake->headers);
        $this->assertGreaterThan(0, $sa->handshake->issued);
        $this->assertNotSame('', $sa->handshake->address);
        $this->assertStringStartsWith('/socket.io/', $sa->handshake->url);
        $this->assertStringNotContainsString('secret', print_r($r, true), 'a secret came back');

        $this->assertSame($this->sorted([$a['sid'], $b['sid'], $c['sid']]), $ids($this->io->fetchSockets()->sockets));
        $skipped = $this->io->except('vip')->fetchSockets();
        $this->assertSame($this->sorted([$b['sid'], $c['sid']]), $ids($skipped->sockets));
    }

    public function testAllRoomsAndServerCount(): void
    {
        $a = $this->connectWith(0, ['x']);
        $b = $this->connectWith(1, ['y', 'x']);

        $r = $this->io->timeout(3)->allRooms();

        $this->assertTrue($r->complete);
        $this->assertFalse($r->truncated);
        $this->assertSame($this->sorted([$a['sid'], $b['sid'], 'x', 'y']), $r->rooms);
        $this->assertSame(2, $this->io->serverCount());
        $this->assertSame(2, $this->io->of('/')->serverCount());
    }

    public function testServerSideEmitWithAck(): void
    {
        $this->listenReplying('ping', ['pong' => [1, 'x', null]], [0, 1]);
        $r = $this->io->timeout(3)->serverSideEmitWithAck('ping', 'hi');
        $this->assertTrue($r->complete);
        $this->assertSame(2, $r->serversExpected);
        $this->assertSame(
            [['pong' => [1, 'x', null]], ['pong' => [1, 'x', null]]],
            array_map(static fn ($x): mixed => $x->reply, $r->replies)
        );
        $this->assertCount(2, $this->stack->serverEvents('/', 'ping', 2));

        // Only server 0's handler calls back: the call ends at its timeout.
        $this->listenReplying('half', 'only-0', [0]);
        $r = $this->io->timeout(0.6)->serverSideEmitWithAck('half');
        $this->assertFalse($r->complete);
        $this->assertSame(['only-0'], array_map(static fn ($x): mixed => $x->reply, $r->replies));

        $this->listenReplying('silent', null, [0, 1]);
        $silent = $this->io->timeout(0.5)->serverSideEmitWithAck('silent');
        $this->assertEquals(new ServerAckResult([], 2, false), $silent);
    }

    public function testWaitingCallsCheckTheirInputBeforeSending(): void
    {
        try {
            $this->io->to('r')->serverSideEmitWithAck('e');
            $this->fail('no error');
        } catch (InvalidArgumentException $e) {
            $this->assertSame(['rooms'], $e->getFields());
            $this->assertTrue($e->isLocal());
        }
        $this->expectException(InvalidArgumentException::class);
        $this->io->to('r')->emitWithAck('e', "\xff"); // not UTF-8
    }

    public function testRepliesDecodeToNativeValues(): void
    {
        // {"big": 2^63-1, "neg": -2^63, "u": 2^64-1, "b": [bin 00], "s": int16 -2}
        $exact = "\x85" . "\xa3big\xcf\x7f\xff\xff\xff\xff\xff\xff\xff" . "\xa3neg\xd3\x80\x00\x00\x00\x00\x00\x00\x00"
            . "\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff" . "\xa1b\x91\xc4\x01\x00" . "\xa1s\xd1\xff\xfe";
        $this->assertEquals(
            [
                'big' => PHP_INT_MAX,
                'neg' => PHP_INT_MIN,
                'u' => '18446744073709551615',
                'b' => [new Binary("\x00")],
                's' => -2,
            ],
            Replies::argument((new Argument())->setMsgpack($exact))
        );
        // timestamp 96: 2023-11-14T22:13:20.5Z
        $stamp = "\xc7\x0c\xff" . pack('N', 500000000) . pack('J', 1700000000);
        $time = Replies::argument((new Argument())->setMsgpack($stamp));
        $this->assertInstanceOf(\DateTimeImmutable::class, $time);
        $this->assertSame('2023-11-14T22:13:20.500000+00:00', $time->format('Y-m-d\TH:i:s.uP'));
        $this->assertEquals(new Binary("\x01"), Replies::argument((new Argument())->setBinary("\x01")));
        $this->assertSame(['a' => [1, 2.5]], Replies::argument((new Argument())->setJson('{"a":[1,2.5]}')));
        $this->expectException(\Emitgate\Exception\InternalException::class);
        Replies::argument((new Argument())->setMsgpack("\xc1"));
    }
}
