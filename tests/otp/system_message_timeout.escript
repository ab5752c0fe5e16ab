#!/usr/bin/env escript
%% What Erlang/OTP does with a server's idle timeout and hibernate_after when a system message
%% (sys:get_state, sys:suspend and sys:resume) comes meanwhile: it starts them again in full,
%% which tests/e2e/state.rs pins for Otter. Run: escript tests/otp/system_message_timeout.escript
-module(system_message_timeout).
-mode(compile).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, handle_info/2]).

init({Parent, T0}) -> {ok, {Parent, T0}, 300}.
handle_call(_, _, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.
handle_info(timeout, {Parent, T0} = S) -> Parent ! {timeout, ms(T0)}, {noreply, S}.

ms(T0) -> erlang:monotonic_time(millisecond) - T0.

wait_timeout() -> receive {timeout, Ms} -> Ms after 2000 -> none end.

main(_) ->
    Me = self(),
    %% A 300 ms idle timeout, and a get_state at 200 ms: the timeout comes at ~500 ms.
    {ok, P} = gen_server:start(?MODULE, {Me, erlang:monotonic_time(millisecond)}, []),
    timer:sleep(200),
    _ = sys:get_state(P),
    io:format("idle timeout 300 ms, get_state at 200 ms: timeout at ~p ms~n", [wait_timeout()]),
    %% The same with a suspend and a resume at 200 ms.
    {ok, Q} = gen_server:start(?MODULE, {Me, erlang:monotonic_time(millisecond)}, []),
    timer:sleep(200),
    ok = sys:suspend(Q),
    ok = sys:resume(Q),
    io:format("idle timeout 300 ms, suspend and resume at 200 ms: timeout at ~p ms~n",
              [wait_timeout()]),
    %% hibernate_after 300 ms, and a get_state at 200 ms: hibernated at ~500 ms, not 300.
    T0 = erlang:monotonic_time(millisecond),
    {ok, H} = gen_server:start(?MODULE, {Me, T0}, [{hibernate_after, 300}]),
    gen_server:call(H, ping),
    timer:sleep(200),
    _ = sys:get_state(H),
    timer:sleep(200),
    {current_function, At400} = process_info(H, current_function),
    timer:sleep(300),
    {current_function, At700} = process_info(H, current_function),
    io:format("hibernate_after 300 ms, get_state at 200 ms: at 400 ms in ~w, at 700 ms in ~w~n",
              [At400, At700]).
