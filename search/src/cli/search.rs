//! `edgenas search`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use edgenas_core::profile::Profile;
use edgenas_search::corpus::Corpus;
use edgenas_search::nas::config::{Preset, SearchConfig, Strategy};
use edgenas_search::nas::derive::{format_value, Derived, REPORT_FILE};
use edgenas_search::nas::reward::{RewardMode, CONSTRAINT_KEYS};
use edgenas_search::nas::search::{search_run, SearchInput};
use edgenas_search::run::{check_split_lengths, train_run};
use edgenas_search::train::TrainConfig;

use super::progress::{BarReporter, SearchBar};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PresetArg {
    /// About 20 minutes on full Penn Treebank on two CPU cores (an estimate).
    Quick,
    /// The ENAS paper's settings (12 nodes, hidden 720 to 1000, 150 epochs); for a GPU.
    Paper,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RewardArg {
    /// An architecture over any budget gets --min-reward.
    Hard,
    /// MnasNet: multiply by (cost / budget)^w for each constraint.
    Soft,
    /// The hypervolume an architecture adds to the Pareto front.
    Hypervolume,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum StrategyArg {
    /// The LSTM controller trained with REINFORCE (ENAS).
    Enas,
    /// Uniform sampling with the same shared model, budgets and evaluation: the baseline.
    Random,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Corpus folder with train/valid/test splits (train.txt or ptb.train.txt, and so on).
    #[arg(long, value_name = "DIR")]
    corpus: PathBuf,

    /// Device profile (TOML) whose budgets the architecture must meet.
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,

    /// Output folder: checkpoints, arch.json, pareto.json and report.md.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Continue the search in --out after its last completed epoch.
    #[arg(long)]
    resume: bool,

    /// Settings to start from; every setting below overrides it.
    #[arg(long, value_enum, default_value = "quick")]
    preset: PresetArg,

    /// Reward mode: the way the device budgets enter the reward.
    #[arg(long, value_enum, default_value = "hard")]
    reward: RewardArg,

    /// Source of the proposed architectures.
    #[arg(long, value_enum, default_value = "enas")]
    strategy: StrategyArg,

    /// Train the chosen architecture from scratch afterwards, in OUT/train, as `edgenas train`
    /// does.
    #[arg(long)]
    then_train: bool,

    /// Random seed; the same seed, settings and thread count give the same search.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Search epochs [quick: 10, paper: 150].
    #[arg(long, help_heading = "Search space and schedule")]
    epochs: Option<usize>,

    /// Hidden sizes to choose from, comma-separated [quick: 64,128,192,256].
    #[arg(
        long,
        value_delimiter = ',',
        help_heading = "Search space and schedule"
    )]
    hidden_sizes: Option<Vec<usize>>,

    /// Minimum nodes in a cell [1].
    #[arg(long, help_heading = "Search space and schedule")]
    min_nodes: Option<usize>,

    /// Maximum nodes in a cell [quick: 8, paper: 12].
    #[arg(long, help_heading = "Search space and schedule")]
    max_nodes: Option<usize>,

    /// Dropout on embedding rows, inputs, the state and outputs, comma-separated
    /// [quick: 0,0.1,0.1,0.2].
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "E,I,H,O",
        help_heading = "Search space and schedule"
    )]
    dropout: Option<Vec<f64>>,

    /// Shared-model training windows per epoch [quick: 200, paper: 400].
    #[arg(long, help_heading = "Shared model")]
    shared_steps: Option<usize>,

    /// Train each sampled cell only at its own size, not also at the largest size (the
    /// sandwich rule is on by default).
    #[arg(long, help_heading = "Shared model")]
    no_sandwich: bool,

    /// Sequences per shared-model batch [quick: 32].
    #[arg(long, help_heading = "Shared model")]
    batch_size: Option<usize>,

    /// Steps of back-propagation through time [35].
    #[arg(long, help_heading = "Shared model")]
    bptt: Option<usize>,

    /// Shared-model SGD learning rate [20].
    #[arg(long, help_heading = "Shared model")]
    lr: Option<f64>,

    /// Maximum gradient norm of the shared model [0.25].
    #[arg(long, help_heading = "Shared model")]
    clip: Option<f64>,

    /// Shared-model L2 weight decay [quick: 0, paper: 1e-7].
    #[arg(long, help_heading = "Shared model")]
    weight_decay: Option<f64>,

    /// Controller updates per epoch, one sampled architecture each [quick: 60].
    #[arg(long, help_heading = "Controller")]
    controller_steps: Option<usize>,

    /// Controller Adam learning rate [quick: 0.0035, paper: 0.00035].
    #[arg(long, help_heading = "Controller")]
    controller_lr: Option<f64>,

    /// Units of the controller LSTM [100].
    #[arg(long, help_heading = "Controller")]
    lstm_size: Option<usize>,

    /// Softmax temperature of the controller's logits [5].
    #[arg(long, help_heading = "Controller")]
    temperature: Option<f64>,

    /// C in C * tanh(logits); 0 turns it off [2.5].
    #[arg(long, help_heading = "Controller")]
    tanh_constant: Option<f64>,

    /// Weight of the entropy bonus [0.0001].
    #[arg(long, help_heading = "Controller")]
    entropy_weight: Option<f64>,

    /// Decay of the moving-average reward baseline [0.95].
    #[arg(long, help_heading = "Controller")]
    baseline_decay: Option<f64>,

    /// c in the reward c / perplexity [80].
    #[arg(long, help_heading = "Reward")]
    reward_c: Option<f64>,

    /// Reward of an over-budget architecture with --reward hard [0].
    #[arg(long, allow_negative_numbers = true, help_heading = "Reward")]
    min_reward: Option<f64>,

    /// Exponent w of one constraint with --reward soft, as KEY=W (KEY: parameters, model_size,
    /// ram, latency, energy); repeat for several.
    #[arg(
        long,
        value_name = "KEY=W",
        allow_hyphen_values = true,
        help_heading = "Reward"
    )]
    soft_weight: Vec<String>,

    /// Exponent of constraints not named by --soft-weight [-0.07, MnasNet's value].
    #[arg(long, allow_negative_numbers = true, help_heading = "Reward")]
    soft_default_weight: Option<f64>,

    /// With --reward soft, use w = 0 for a cost within its budget, so only overruns count.
    #[arg(long, help_heading = "Reward")]
    soft_zero_within_budget: bool,

    /// Perplexity bounding the hypervolume box with --reward hypervolume [vocabulary size].
    #[arg(long, help_heading = "Reward")]
    reference_perplexity: Option<f64>,

    /// Sequences in the validation minibatch each reward is measured on [quick: 32].
    #[arg(long, help_heading = "Reward")]
    reward_batch_size: Option<usize>,

    /// Architectures sampled and evaluated after the search [quick: 48].
    #[arg(long, help_heading = "Derive")]
    derive_samples: Option<usize>,

    /// Sequences per validation batch when evaluating them [quick: 32].
    #[arg(long, help_heading = "Derive")]
    derive_batch_size: Option<usize>,

    /// Validation windows each one is evaluated on [quick: 12].
    #[arg(long, help_heading = "Derive")]
    derive_windows: Option<usize>,

    /// Epoch limit of --then-train.
    #[arg(long, default_value_t = TrainConfig::default().max_epochs, help_heading = "Training the choice")]
    train_epochs: usize,

    /// Initial SGD learning rate of --then-train; lower it when a cell diverges.
    #[arg(long, default_value_t = TrainConfig::default().lr, help_heading = "Training the choice")]
    train_lr: f64,

    /// Time limit of --then-train, in minutes [default: none].
    #[arg(long, value_name = "MINUTES", help_heading = "Training the choice")]
    train_time_limit: Option<f64>,

    /// Maximum vocabulary size, <unk> and <eos> included [default: no limit].
    #[arg(long, value_name = "TOKENS")]
    max_vocab: Option<usize>,

    /// CPU threads for libtorch [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

impl SearchArgs {
    fn config(&self, vocab_size: usize) -> anyhow::Result<SearchConfig> {
        let preset = match self.preset {
            PresetArg::Quick => Preset::Quick,
            PresetArg::Paper => Preset::Paper,
        };
        let strategy = match self.strategy {
            StrategyArg::Enas => Strategy::Enas,
            StrategyArg::Random => Strategy::Random,
        };
        let mode = match self.reward {
            RewardArg::Hard => RewardMode::Hard,
            RewardArg::Soft => RewardMode::Soft,
            RewardArg::Hypervolume => RewardMode::Hypervolume,
        };
        let mut c = SearchConfig::preset(preset, vocab_size, strategy, mode);
        c.seed = self.seed;
        let set = |target: &mut usize, value: Option<usize>| {
            if let Some(v) = value {
                *target = v;
            }
        };

        set(&mut c.epochs, self.epochs);
        set(&mut c.space.min_nodes, self.min_nodes);
        set(&mut c.space.max_nodes, self.max_nodes);
        set(&mut c.shared.steps_per_epoch, self.shared_steps);
        set(&mut c.shared.batch_size, self.batch_size);
        set(&mut c.shared.bptt, self.bptt);
        set(&mut c.controller_steps_per_epoch, self.controller_steps);
        set(&mut c.controller.lstm_size, self.lstm_size);
        set(&mut c.reward_batch_size, self.reward_batch_size);
        set(&mut c.derive_samples, self.derive_samples);
        set(&mut c.derive_batch_size, self.derive_batch_size);
        set(&mut c.derive_windows, self.derive_windows);

        let setf = |target: &mut f64, value: Option<f64>| {
            if let Some(v) = value {
                *target = v;
            }
        };
        setf(&mut c.shared.lr, self.lr);
        setf(&mut c.shared.clip, self.clip);
        setf(&mut c.shared.weight_decay, self.weight_decay);
        setf(&mut c.controller.lr, self.controller_lr);
        setf(&mut c.controller.temperature, self.temperature);
        setf(&mut c.controller.tanh_constant, self.tanh_constant);
        setf(&mut c.controller.entropy_weight, self.entropy_weight);
        setf(&mut c.controller.baseline_decay, self.baseline_decay);
        setf(&mut c.reward.c, self.reward_c);
        setf(&mut c.reward.min_reward, self.min_reward);
        setf(&mut c.reward.soft_default_weight, self.soft_default_weight);
        setf(
            &mut c.reward.reference_perplexity,
            self.reference_perplexity,
        );
        c.reward.soft_zero_within_budget = self.soft_zero_within_budget;
        if self.no_sandwich {
            c.shared.sandwich = false;
        }

        if let Some(sizes) = &self.hidden_sizes {
            c.space.hidden_sizes = sizes.clone();
        }
        if let Some(d) = &self.dropout {
            let [embedding, input, hidden, output] = d[..] else {
                anyhow::bail!(
                    "--dropout has {} values; give four: embedding,input,hidden,output",
                    d.len()
                );
            };
            c.space.dropout = edgenas_core::Dropout {
                embedding,
                input,
                hidden,
                output,
            };
            for (name, p) in [
                ("embedding", embedding),
                ("input", input),
                ("hidden", hidden),
                ("output", output),
            ] {
                if !(0.0..1.0).contains(&p) {
                    anyhow::bail!(
                        "--dropout {name} is {p}; a dropout probability must be in [0, 1)"
                    );
                }
            }
        }

        for item in &self.soft_weight {
            let (key, value) = item.split_once('=').with_context(|| {
                format!("--soft-weight {item}: write KEY=W, such as latency=-0.5")
            })?;
            if !CONSTRAINT_KEYS.contains(&key) {
                anyhow::bail!(
                    "--soft-weight {item}: unknown constraint {key:?}; use one of {}",
                    CONSTRAINT_KEYS.join(", ")
                );
            }
            let Ok(w) = value.parse::<f64>() else {
                anyhow::bail!("--soft-weight {item}: {value:?} is not a number; write KEY=W, such as latency=-0.5");
            };
            c.reward.soft_weights.insert(key.to_string(), w);
        }
        // The space re-sorts and checks the sizes and node range.
        c.space = edgenas_search::nas::space::SearchSpace::new(
            vocab_size,
            c.space.hidden_sizes.clone(),
            c.space.min_nodes,
            c.space.max_nodes,
            c.space.dropout,
        )?;
        c.validate().map_err(anyhow::Error::msg)?;
        Ok(c)
    }
}

/// Runs the search; returns whether an architecture meeting every budget was found.
pub fn search(args: SearchArgs) -> anyhow::Result<bool> {
    super::require_file(&args.profile, "device profile")?;
    let profile_text = std::fs::read_to_string(&args.profile)
        .with_context(|| format!("reading device profile {}", args.profile.display()))?;
    let profile = Profile::parse(&profile_text, &args.profile.display().to_string())?;
    super::train::set_threads(args.threads)?;
    if let Some(m) = args.train_time_limit.filter(|m| m.is_nan() || *m <= 0.0) {
        anyhow::bail!("--train-time-limit is {m}; use a positive number of minutes");
    }
    if args.train_epochs == 0 {
        anyhow::bail!("--train-epochs is 0; use at least 1");
    }

    let corpus = Corpus::load(&args.corpus, args.max_vocab)?;
    let config = args.config(corpus.vocab.len())?;
    warn_unused_options(&args, &config);
    let train_config = TrainConfig {
        max_epochs: args.train_epochs,
        time_limit_minutes: args.train_time_limit,
        lr: args.train_lr,
        seed: args.seed,
        ..TrainConfig::default()
    };
    edgenas_search::run::validate_config(&train_config)
        .context("checking the --then-train settings")?;
    if args.then_train {
        // Checked now rather than after a search of many minutes.
        check_split_lengths(&corpus, &train_config).context(
            "--then-train trains with the settings of `edgenas train` (batch size 32, BPTT 35, \
             evaluation batch size 10), so the corpus must be long enough for them",
        )?;
    }
    let cells = config.space.size();
    tracing::info!(
        "searching {} cells ({} strategy, {} reward) for {} over {} epochs",
        if cells < 1e6 {
            format!("{cells}")
        } else {
            format!("{cells:.3e}")
        },
        config.strategy.name(),
        config.reward.mode.name(),
        profile.name,
        config.epochs
    );
    let input = SearchInput {
        corpus: &corpus,
        profile: &profile,
        profile_text: &profile_text,
        config: &config,
        out: &args.out,
        resume: args.resume,
    };
    let mut reporter = SearchBar::new();
    let derived = search_run(&input, &mut reporter)
        .with_context(|| format!("searching in {}", args.out.display()))?;
    drop(reporter);
    print_outcome(&derived, &args.out);

    let Some(chosen) = derived.chosen() else {
        if args.then_train {
            tracing::warn!("--then-train skipped: no architecture meets every budget");
        }
        return Ok(false);
    };
    if args.then_train {
        let train_dir = args.out.join("train");
        let resume = train_dir
            .join(edgenas_search::checkpoint::STATE_FILE)
            .is_file();
        match resume {
            true => tracing::info!(
                "resuming the training of {} in {}",
                chosen.summary,
                train_dir.display()
            ),
            false => tracing::info!(
                "training {} from scratch in {}",
                chosen.summary,
                train_dir.display()
            ),
        }
        // NOTE: the shared model bounds the state norm at every step, but a cell trained alone
        // does not. A cell of ReLU and identity nodes can therefore diverge here at the default
        // learning rate, and the error then points to --train-lr.
        let mut bar = BarReporter::new();
        let metrics = train_run(
            &corpus,
            &chosen.arch,
            &train_config,
            &train_dir,
            resume,
            &mut bar,
        )
        .with_context(|| {
            format!(
                "training the chosen architecture in {} (rerun with --resume and a lower \
                     --train-lr if it diverged)",
                train_dir.display()
            )
        })?;
        drop(bar);
        println!();
        println!("trained from scratch {}", train_dir.display());
        println!("valid perplexity    {:.2}", metrics.valid_perplexity);
        println!("test perplexity     {:.2}", metrics.test_perplexity);
        println!(
            "training time       {:.1} min",
            metrics.train_seconds / 60.0
        );
        append_training(&args.out, &metrics)?;
    }
    Ok(true)
}

/// Adds the from-scratch training result to the search's `report.md`.
fn append_training(out: &std::path::Path, m: &edgenas_search::run::Metrics) -> anyhow::Result<()> {
    let path = out.join(REPORT_FILE);
    let mut report =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    report.push_str(&format!(
        "\n## Trained from scratch\n\n`{}` trained in `train/`: test perplexity {:.2}, validation \
         perplexity {:.2}, {} epochs (best {}; {}), {:.1} min of training.\n",
        m.arch,
        m.test_perplexity,
        m.valid_perplexity,
        m.epochs,
        m.best_epoch,
        m.stop_reason,
        m.train_seconds / 60.0
    ));
    edgenas_core::write_atomic(&path, report.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Warns about options that the chosen reward or strategy does not use.
fn warn_unused_options(args: &SearchArgs, config: &SearchConfig) {
    let mode = config.reward.mode;
    let unused = |option: &str, reason: &str| tracing::warn!("{option} has no effect {reason}");
    if mode != RewardMode::Soft
        && (!args.soft_weight.is_empty()
            || args.soft_default_weight.is_some()
            || args.soft_zero_within_budget)
    {
        unused(
            "--soft-weight, --soft-default-weight or --soft-zero-within-budget",
            "without --reward soft",
        );
    }
    if mode != RewardMode::Hypervolume && args.reference_perplexity.is_some() {
        unused("--reference-perplexity", "without --reward hypervolume");
    }
    if mode != RewardMode::Hard && args.min_reward.is_some() {
        unused("--min-reward", "without --reward hard");
    }
    let controller_options = [
        args.controller_steps.is_some(),
        args.controller_lr.is_some(),
        args.lstm_size.is_some(),
        args.temperature.is_some(),
        args.tanh_constant.is_some(),
        args.entropy_weight.is_some(),
        args.baseline_decay.is_some(),
        args.reward_batch_size.is_some(),
    ];
    if config.strategy == Strategy::Random && controller_options.contains(&true) {
        unused(
            "a controller or reward option",
            "with --strategy random, which trains no controller",
        );
    }
    let train_options = args.train_time_limit.is_some()
        || args.train_epochs != TrainConfig::default().max_epochs
        || args.train_lr != TrainConfig::default().lr;
    if !args.then_train && train_options {
        unused(
            "--train-epochs, --train-lr or --train-time-limit",
            "without --then-train",
        );
    }
}

fn print_outcome(d: &Derived, out: &std::path::Path) {
    println!(
        "search time         {:.1} min (+ {:.1} min derive)",
        d.search_seconds / 60.0,
        d.derive_seconds / 60.0
    );
    println!(
        "candidates          {} evaluated, {} within budget, {} on the Pareto front",
        d.candidates.len(),
        d.candidates.iter().filter(|c| c.within_budget).count(),
        d.candidates.iter().filter(|c| c.on_front).count()
    );
    match d.chosen() {
        Some(c) => {
            println!("chosen              {}", c.summary);
            println!(
                "valid perplexity    {:.2} (shared weights)",
                c.valid_perplexity
            );
            for k in &c.costs.checks {
                let met = if k.met { "met" } else { "NOT met" };
                println!(
                    "{:<19} {} of {} ({met})",
                    k.name,
                    format_value(k.value, k.unit),
                    format_value(k.budget, k.unit)
                );
            }
            println!(
                "written             {}/arch.json, pareto.json, report.md",
                out.display()
            );
        }
        None => {
            println!(
                "chosen              none: {}",
                d.no_fit.as_deref().unwrap_or("")
            );
            println!(
                "written             {}/pareto.json, report.md",
                out.display()
            );
        }
    }
}
