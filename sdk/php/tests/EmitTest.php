<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\JsonObject;
use Emitgate\RawJson;
use Emitgate\Tests\Fixtures\Color;
use Emitgate\Tests\Support\EndToEndTestCase;

/**
 * emit / broadcast and the operators, checked by what real socket.io-client
 * clients receive.
 */
final class EmitTest extends EndToEndTestCase
{
    public function testEmitReachesTheRoomOnEveryServerAndNobodyElse(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r1']);
        $c = $this->stack->connect('/', 1, ['r2']);

        $result = $this->io->to('r1')->emit('news', 'hello');

        $this->assertSame(2, $result->receivers, 'both servers subscribe to the namespace');
        $this->assertSame(['hello'], $this->argsOf($a['id'], 'news'));
        $this->assertSame(['hello'], $this->argsOf($b['id'], 'news'));
        $this->assertSame([], $this->barrier([$c['id']])[$c['id']]);
    }

    public function testToAddsUpAndExceptSkips(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r2']);
        $muted = $this->stack->connect('/', 0, ['r1', 'muted']);
        $other = $this->stack->connect('/', 1, ['r3']);

        $this->io->to('r1')->to(['r2'])->except('muted')->emit('news', 1);

        $seen = $this->barrier([$a['id'], $b['id'], $muted['id'], $other['id']]);
        $this->assertSame(['news'], $seen[$a['id']]);
        $this->assertSame(['news'], $seen[$b['id']]);
        $this->assertSame([], $seen[$muted['id']]);
        $this->assertSame([], $seen[$other['id']]);
    }

    public function testInIsToAndASocketIdIsARoom(): void
    {
        $a = $this->stack->connect('/', 0);
        $b = $this->stack->connect('/', 1);

        $this->io->in($b['sid'])->emit('direct', 'only b');

        $seen = $this->barrier([$a['id'], $b['id']]);
        $this->assertSame([], $seen[$a['id']]);
        $this->assertSame(['direct'], $seen[$b['id']]);
        $this->assertSame(['only b'], $this->argsOf($b['id'], 'direct'));
    }

    public function testOperatorsAreImmutable(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $b = $this->stack->connect('/', 1, ['r2']);

        $base = $this->io->to('r1');
        $wider = $base->to('r2');
        $base->emit('narrow');
        $wider->emit('wide');

        $seen = $this->barrier([$a['id'], $b['id']]);
        $this->assertSame(['narrow', 'wide'], $seen[$a['id']]);
        $this->assertSame(['wide'], $seen[$b['id']]);
    }

    public function testBroadcastReachesTheWholeNamespaceExceptRooms(): void
    {
        $a = $this->stack->connect('/', 0);
        $b = $this->stack->connect('/', 1, ['r1']);
        $muted = $this->stack->connect('/', 1, ['muted']);
        $admin = $this->stack->connect('/admin', 0);

        $result = $this->io->except('muted')->broadcast('all', ['n' => 1]);

        $this->assertSame(2, $result->receivers);
        $seen = $this->barrier([$a['id'], $b['id'], $muted['id']]);
        $this->assertSame(['all'], $seen[$a['id']]);
        $this->assertSame(['all'], $seen[$b['id']]);
        $this->assertSame([], $seen[$muted['id']]);
        $this->assertSame([], $this->barrier([$admin['id']], '/admin')[$admin['id']]);
    }

    public function testOfSelectsTheNamespaceAndAddsTheSlash(): void
    {
        $root = $this->stack->connect('/', 0, ['r1']);
        $admin = $this->stack->connect('/admin', 1, ['r1']);

        $this->io->of('admin')->to('r1')->emit('for-admins', true);
        $this->io->of('/admin')->broadcast('also-admins');

        $this->assertSame(['for-admins', 'also-admins'], $this->barrier([$admin['id']], '/admin')[$admin['id']]);
        $this->assertSame([], $this->barrier([$root['id']])[$root['id']]);
    }

    public function testOfStartsAFreshScope(): void
    {
        $admin = $this->stack->connect('/admin', 0, ['r1']);
        $adminOther = $this->stack->connect('/admin', 1, ['r2']);

        $this->io->to('r2')->except('r1')->of('/admin')->broadcast('fresh');

        $seen = $this->barrier([$admin['id'], $adminOther['id']], '/admin');
        $this->assertSame(['fresh'], $seen[$admin['id']]);
        $this->assertSame(['fresh'], $seen[$adminOther['id']]);
    }

    public function testReceiversIsZeroWhereNoServerListens(): void
    {
        $this->assertSame(0, $this->io->of('/nobody-here')->broadcast('void')->receivers);
        $this->assertSame(0, $this->io->of('/nobody-here')->to('r1')->emit('void')->receivers);
    }

    public function testVolatileAndCompressFlagsStillDeliver(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);

        // A volatile packet may be dropped while the client's transport is
        // busy; right after connecting (or a barrier) it is idle.
        $this->assertSame(2, $this->io->to('r1')->volatile()->emit('v', 1)->receivers);
        $this->assertSame(['v'], $this->barrier([$a['id']])[$a['id']]);

        $this->io->to('r1')->compress(false)->emit('c0', 2);
        $this->io->to('r1')->compress()->emit('c1', 3);
        $this->assertSame(['v', 'c0', 'c1'], $this->barrier([$a['id']])[$a['id']]);
        $this->assertSame([3], $this->argsOf($a['id'], 'c1'));
    }

    public function testJsonArgumentsKeepTheirTypes(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $serializable = new class implements \JsonSerializable {
            public function jsonSerialize(): mixed
            {
                return ['kind' => 'custom', 'list' => [1, 2]];
            }
        };
        $object = new \stdClass();
        $object->x = 1;
        $object->nested = new \stdClass();

        $this->io->to('r1')->emit(
            'types',
            null,
            true,
            false,
            0,
            -7,
            2 ** 53,
            1.5,
            -0.25,
            '',
            'text',
            [],
            [1, 'two', [3]],
            ['a' => 1, 'b' => [true, null]],
            [3 => 'x', 4 => 'y'],
            new JsonObject(),
            new JsonObject([1, 2]),
            new \stdClass(),
            $object,
            $serializable,
            new \DateTimeImmutable('2023-11-14T22:13:20.123+01:00'),
            Color::Red,
            new RawJson('{"raw":[1,{"deep":"yes"}]}'),
        );

        $args = $this->argsOf($a['id'], 'types');
        $this->assertSame(
            '[null,true,false,0,-7,9007199254740992,1.5,-0.25,"","text",[],[1,"two",[3]],'
            . '{"a":1,"b":[true,null]},{"3":"x","4":"y"},{},{"0":1,"1":2},{},{"x":1,"nested":{}},'
            . '{"kind":"custom","list":[1,2]},"2023-11-14T21:13:20.123Z","red",{"raw":[1,{"deep":"yes"}]}]',
            json_encode($args, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION)
        );
    }

    public function testUnicodeInEventsRoomsNamespacesAndArguments(): void
    {
        $a = $this->stack->connect('/espace-é', 1, ['salle-🎉-房间']);
        $text = "héllo 世界 🎉 مرحبا \u{200d} \u{0000} \"quoted\" \\ / \n\t";

        $this->io->of('/espace-é')->to('salle-🎉-房间')->emit('événement-🎉', $text, ['clé-é' => '值']);

        $this->assertEquals(
            [$text, (object) ['clé-é' => '值']],
            $this->argsOf($a['id'], 'événement-🎉')
        );
    }

    public function testBinaryArgumentsArriveAsBuffers(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $all = implode('', array_map('chr', range(0, 255)));

        $this->io->to('r1')->emit('bin', new Binary($all), new Binary(''), 'text after');

        $this->assertEquals(
            [self::bin($all), self::bin(''), 'text after'],
            $this->argsOf($a['id'], 'bin')
        );
    }

    public function testNestedBinaryAndExactBigIntegersUseMsgpack(): void
    {
        $a = $this->stack->connect('/', 1, ['r1']);

        $this->io->to('r1')->emit(
            'nested',
            ['file' => new Binary("\x00\x01\xff"), 'parts' => [new Binary('ab'), 'c'], 'meta' => new JsonObject()],
            [2 ** 60, -(2 ** 60), PHP_INT_MIN, 'é', 1.5, null, true, []],
        );

        $args = $this->argsOf($a['id'], 'nested');
        $this->assertEquals(
            (object) [
                'file' => self::bin("\x00\x01\xff"),
                'parts' => [self::bin('ab'), 'c'],
                'meta' => new \stdClass(),
            ],
            $args[0]
        );
        // Integers beyond 2^53 travel exactly as msgpack integers; the browser
        // holds them as doubles, and 2^60 and -2^63 are exact doubles.
        $this->assertSame(
            [(float) 2 ** 60, (float) -(2 ** 60), (float) PHP_INT_MIN],
            array_map('floatval', array_slice($args[1], 0, 3))
        );
        $this->assertSame(['é', 1.5, null, true, []], array_slice($args[1], 3));
    }

    public function testApiKeyIsAccepted(): void
    {
        $a = $this->stack->connect('/', 0, ['r1']);
        $io = new \Emitgate\Client('http://' . $this->stack->grpc, apiKey: 'secret-key', timeout: 3.0);

        $this->assertSame(2, $io->to('r1')->emit('with-key')->receivers);
        $this->assertSame([], $this->argsOf($a['id'], 'with-key'));
    }
}
