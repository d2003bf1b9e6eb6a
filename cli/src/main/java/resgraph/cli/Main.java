package resgraph.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;

/** {@code resgraph}: one command for every part of the system. */
@Command(name = "resgraph", mixinStandardHelpOptions = true, version = "resgraph 0.1.0",
    description = "Exact causal graphs of a GPT-2 residual stream through sparse autoencoders.",
    subcommands = {RunCommand.class, UpCommand.class, StatusCommand.class, DownCommand.class, CypherCommand.class, CompareCommand.class, BenchCommand.class,
        AblateCommand.class, FaithfulnessCommand.class, ModelServerCommand.class, GenerateCommand.class, HelpCommand.class})
public final class Main implements Runnable {

  @Override
  public void run() {
    System.err.println("resgraph: name a command (see resgraph --help)");
  }

  public static void main(String[] args) {
    System.exit(CommandLines.run(new Main(), args));
  }
}
